import { checkString } from './coerce'
import { native } from './native'

/** Encryption modes. Only `'Plaintext'` exists today; the parameter keeps the seed's API shape. */
export type Encryption = 'Plaintext'

/**
 * A network's protocol: nodes only talk to nodes with the same subnet, encryption and protocol
 * version. `id` is a stable hash of the three (32 hex digits).
 */
export class Protocol {
  readonly subnet: string
  readonly encryption: Encryption
  readonly id: string
  constructor(subnet: string, encryption: Encryption = 'Plaintext') {
    checkString(subnet, 'subnet')
    if (encryption !== 'Plaintext') throw new TypeError(`encryption must be 'Plaintext' (got ${JSON.stringify(encryption)})`)
    this.subnet = subnet
    this.encryption = encryption
    this.id = native.protocolId(subnet, encryption)
  }
}
