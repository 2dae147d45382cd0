//! A node's options: what it listens on, how it talks to peers, where it keeps its data, and
//! the checks on them. The limits and defaults they are checked against live in the engine
//! (`chord::config`, the one home of every limit); this is the node's side: key pairs, network
//! keys, storage, which the pure engine knows nothing of.

pub use chord::config::*;
use chord::error::{Error, Result};
use chord_noise::KeyPair;
use std::path::PathBuf;
use std::time::Duration;

pub use chord::config::ChordConfig;

/// When a write counts as stored on a node with a `dataDir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After the store's journal was flushed to the disk (`fdatasync`): survives a process
    /// kill, an OS crash and a power loss.
    Sync,
    /// After it was handed to the operating system (written, not flushed); the journal is
    /// flushed to the disk once a second. Survives a process kill; an OS crash or power loss
    /// may lose the last second of acknowledged writes.
    Os,
}

impl Durability {
    pub fn parse(text: &str) -> Result<Durability> {
        match text {
            "sync" => Ok(Durability::Sync),
            "os" => Ok(Durability::Os),
            other => Err(Error::InvalidArgument(format!("durability must be 'sync' or 'os' (got {other:?})"))),
        }
    }
}

/// Where and how a node keeps what it holds across restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// The node's folder: its identity, its entries, its clock's high-water mark, its members.
    pub dir: PathBuf,
    pub durability: Durability,
    /// Keep the identity, drop the entries (a damaged store) and refill from the ring.
    pub resync: bool,
}
/// Everything a node is started with.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Address advertised to peers, when it differs from the bound one (NAT, 0.0.0.0); port 0
    /// = the bound port. Required when bound to every interface (0.0.0.0, ::).
    pub out_addr: Option<(String, u16)>,
    pub subnet: String,
    /// `"Noise"` (the default) or `"Plaintext"`.
    pub encryption: String,
    /// The node's static key pair (its id derives from it); a fresh one when `None`.
    pub key_pair: Option<KeyPair>,
    /// The pre-shared key mixed into every Noise handshake (`noise::network_key_from_*`);
    /// `None` = an open network (`noise::open_network_key`).
    pub network_key: Option<[u8; 32]>,
    pub max_peers: usize,
    pub max_frame_bytes: usize,
    pub request_timeout: Duration,
    /// A peer silent this long while we wait on it is suspected; at most `request_timeout`.
    pub failure_timeout: Duration,
    /// Connect to peers learned through peer exchange, up to `max_peers`.
    pub peer_exchange: bool,
    /// Present for a ChordSocket.
    pub chord: Option<ChordConfig>,
    /// Present when the node keeps its data on disk (`dataDir`); in memory otherwise.
    pub storage: Option<StorageConfig>,
}

impl Config {
    pub fn new(host: impl Into<String>, port: u16) -> Config {
        Config {
            host: host.into(),
            port,
            out_addr: None,
            subnet: String::new(),
            encryption: DEFAULT_ENCRYPTION.into(),
            key_pair: None,
            network_key: None,
            max_peers: DEFAULT_MAX_PEERS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            failure_timeout: DEFAULT_FAILURE_TIMEOUT,
            peer_exchange: true,
            chord: None,
            storage: None,
        }
    }

    /// Check every option against its limit; the error names the option as users spell it.
    pub fn validate(&self) -> Result<()> {
        check_range("maxPeers", self.max_peers as u64, 1, MAX_PEERS as u64)?;
        check_range("maxFrameBytes", self.max_frame_bytes as u64, MIN_FRAME_BYTES as u64, MAX_FRAME_BYTES as u64)?;
        check_range("requestTimeoutMs", self.request_timeout.as_millis() as u64, 1, MAX_REQUEST_TIMEOUT.as_millis() as u64)?;
        check_range(
            "failureTimeoutMs",
            self.failure_timeout.as_millis() as u64,
            MIN_FAILURE_TIMEOUT.as_millis() as u64,
            (self.request_timeout.as_millis() as u64).max(MIN_FAILURE_TIMEOUT.as_millis() as u64),
        )?;
        self.check_advertised_address()?;
        if !ENCRYPTIONS.contains(&self.encryption.as_str()) {
            return Err(Error::InvalidArgument(format!("encryption must be 'Noise' or 'Plaintext' (got {:?})", self.encryption)));
        }
        if self.network_key.is_some() && self.encryption != "Noise" {
            return Err(Error::InvalidArgument("a networkKey needs Noise encryption (Plaintext cannot keep anyone out)".into()));
        }
        if let Some(pair) = &self.key_pair {
            if KeyPair::from_secret(pair.secret).public != pair.public {
                return Err(Error::InvalidArgument("keyPair.publicKey is not the public key of keyPair.secretKey".into()));
            }
        }
        if let Some(storage) = &self.storage {
            if self.chord.is_none() {
                return Err(Error::InvalidArgument("dataDir is an option of a ChordSocket".into()));
            }
            if storage.dir.as_os_str().is_empty() {
                return Err(Error::InvalidArgument("dataDir must name a folder (got an empty string)".into()));
            }
        }
        let Some(chord) = &self.chord else { return Ok(()) };
        if self.max_frame_bytes < MIN_CHORD_FRAME_BYTES {
            return Err(Error::InvalidArgument(format!(
                "maxFrameBytes must be at least {MIN_CHORD_FRAME_BYTES} for a ChordSocket, so that a value of the maximum size ({MAX_VALUE_BYTES} bytes) with its key always fits a frame, with room for bulk transfers (got {})",
                self.max_frame_bytes
            )));
        }
        chord.validate()?;
        // A member serves its arc once it synced it with each replica: it needs a connection to
        // its predecessor and to each of its `replicas - 1` successors at once.
        if chord.join && self.max_peers < chord.replicas {
            return Err(Error::InvalidArgument(format!(
                "maxPeers must be at least replicas ({}) for a ring member, which keeps a connection to its predecessor and to each of its {} other replicas (got {}); a client (join: false) may use fewer",
                chord.replicas,
                chord.replicas - 1,
                self.max_peers
            )));
        }
        Ok(())
    }

    /// The address this node tells peers it listens at must be one they accept
    /// (`chord::addr`): a node bound to every interface (0.0.0.0, ::) has to say where it is.
    fn check_advertised_address(&self) -> Result<()> {
        let (host, port) = match &self.out_addr {
            Some((host, port)) => (host.as_str(), *port),
            None if chord::addr::check_advertised(&self.host, 1).is_err() => {
                return Err(Error::InvalidArgument(format!(
                    "a node listening on {:?} needs outAddr, the address peers reach it at: peers refuse a node that names {:?} as its address",
                    self.host, self.host
                )))
            }
            None => return Ok(()),
        };
        chord::addr::check_advertised(host, port.max(1)).map_err(|why| Error::InvalidArgument(format!("outAddr {host}:{port} is {why}: peers would refuse it")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig::default());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_options_name_themselves() {
        let mut config = Config::new("127.0.0.1", 0);
        config.max_frame_bytes = MIN_FRAME_BYTES - 1;
        let error = config.validate().unwrap_err();
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
        assert!(error.to_string().starts_with("maxFrameBytes must be from 4096"), "{error}");
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig { replicas: 0, ..ChordConfig::default() });
        assert!(config.validate().unwrap_err().to_string().starts_with("replicas must be from 1 to 64"));
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig { replicas: 3, ..ChordConfig::default() });
        config.max_peers = 2;
        assert!(config.validate().unwrap_err().to_string().starts_with("maxPeers must be at least replicas (3)"));
        config.chord = Some(ChordConfig { replicas: 3, join: false, ..ChordConfig::default() });
        assert_eq!(config.validate(), Ok(()), "a client needs one connection");
        let mut config = Config::new("127.0.0.1", 0);
        config.max_peers = 0;
        assert!(config.validate().is_err());
        let mut config = Config::new("127.0.0.1", 0);
        config.failure_timeout = Duration::from_millis(1);
        assert!(config.validate().unwrap_err().to_string().starts_with("failureTimeoutMs"));
    }

    #[test]
    fn encryption_network_key_and_key_pair_are_checked() {
        let mut config = Config::new("127.0.0.1", 0);
        assert_eq!(config.encryption, "Noise", "secure by default");
        config.encryption = "TLS".into();
        assert!(config.validate().unwrap_err().to_string().contains("'Noise' or 'Plaintext'"));
        config.encryption = "Plaintext".into();
        config.network_key = Some([1; 32]);
        assert!(config.validate().unwrap_err().to_string().contains("needs Noise"));
        let mut config = Config::new("127.0.0.1", 0);
        let mut pair = KeyPair::generate();
        config.key_pair = Some(pair.clone());
        assert_eq!(config.validate(), Ok(()));
        pair.public[0] ^= 1;
        config.key_pair = Some(pair);
        assert!(config.validate().unwrap_err().to_string().contains("keyPair.publicKey"));
    }

    #[test]
    fn a_node_tells_peers_an_address_they_accept() {
        for host in ["0.0.0.0", "::"] {
            let mut config = Config::new(host, 4000);
            assert!(config.validate().unwrap_err().to_string().contains("needs outAddr"), "{host}");
            config.out_addr = Some(("203.0.113.7".into(), 4000));
            assert_eq!(config.validate(), Ok(()));
            config.out_addr = Some(("224.0.0.1".into(), 4000));
            assert!(config.validate().unwrap_err().to_string().contains("multicast"));
            config.out_addr = Some(("203.0.113.7".into(), 0));
            assert_eq!(config.validate(), Ok(()), "port 0: the bound port");
        }
        assert_eq!(Config::new("127.0.0.1", 0).validate(), Ok(()));
        assert_eq!(Config::new("localhost", 0).validate(), Ok(()));
    }

    #[test]
    fn a_chord_node_needs_frames_big_enough_for_the_largest_value() {
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig::default());
        config.max_frame_bytes = MIN_CHORD_FRAME_BYTES - 1;
        let error = config.validate().unwrap_err();
        assert!(error.to_string().contains("for a ChordSocket"), "{error}");
        config.max_frame_bytes = MIN_CHORD_FRAME_BYTES;
        assert_eq!(config.validate(), Ok(()));
        config.chord = None;
        config.max_frame_bytes = MIN_FRAME_BYTES;
        assert_eq!(config.validate(), Ok(()), "a plain MeshSocket may use small frames");
    }
}
