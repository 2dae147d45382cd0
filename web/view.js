/*
 * chordnet ring view: draws /api/events' `ring` snapshots (RingView JSON, docs/VIEW.md) as a
 * circle of members with arcs, fingers and successors, plus rates, latency, events and a member
 * table. Plain browser JavaScript, no build step and nothing fetched from elsewhere.
 */
'use strict'
;(() => {
  const WIDTH = 900
  const HEIGHT = 780
  const CX = WIDTH / 2
  const CY = HEIGHT / 2
  const R = 265
  /** Vertical room a label needs, in SVG units. */
  const LABEL_GAP = 15
  /** With more members than this, only the focused node's neighbours are labelled. */
  const LABEL_ALL_UP_TO = 24
  const OPS = ['get', 'set', 'delete']

  const $ = (id) => document.getElementById(id)
  let view = null
  let focus = null // id of the member whose links are drawn (default: the serving node)

  const esc = (value) => String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
  const short = (id) => (id ? id.slice(0, 8) : '—')
  // Formatters are made once: toLocaleString() builds one per call, which dominates a render.
  const FORMATS = [0, 1, 2].map((digits) => new Intl.NumberFormat('en-US', { maximumFractionDigits: digits }))
  const CLOCK = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
  const num = (n) => (n === null || n === undefined ? '—' : FORMATS[n < 10 ? 2 : n < 100 ? 1 : 0].format(n))
  const ms = (n) => (n === null || n === undefined ? '—' : n < 1 ? `${(n * 1000).toFixed(0)} µs` : `${n.toFixed(n < 10 ? 2 : 1)} ms`)
  const bytes = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : n < 1 << 30 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / (1 << 30)).toFixed(2)} GiB`)
  const pct = (f) => (f === null || f === undefined ? '—' : `${(f * 100).toFixed(f < 0.01 ? 2 : 1)} %`)
  const angle = (position) => position * 2 * Math.PI - Math.PI / 2
  const point = (position, radius) => [CX + radius * Math.cos(angle(position)), CY + radius * Math.sin(angle(position))]
  const xy = ([x, y]) => `${x.toFixed(1)} ${y.toFixed(1)}`

  /** Blue → yellow → red for t in [0, 1]. */
  function heat(t) {
    const stops = [[59, 111, 209], [232, 211, 74], [229, 72, 59]]
    const s = Math.max(0, Math.min(1, t)) * 2
    const [a, b] = s <= 1 ? [stops[0], stops[1]] : [stops[1], stops[2]]
    const f = s <= 1 ? s : s - 1
    return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * f)).join(',')})`
  }

  /** Round trip in ms → green (fast) to red (slow). */
  function rttColour(rtt) {
    if (rtt === null || rtt === undefined) return '#6b7785'
    return rtt <= 1 ? '#4cc38a' : rtt <= 5 ? '#e8d34a' : '#e5483b'
  }

  /** A clockwise arc on the ring from position a to b at `radius`. */
  function arcPath(a, b, radius) {
    let span = b - a
    if (span <= 0) span += 1
    if (span >= 0.9999) {
      return `M ${xy(point(a, radius))} A ${radius} ${radius} 0 1 1 ${xy(point(a + 0.5, radius))} A ${radius} ${radius} 0 1 1 ${xy(point(a, radius))}`
    }
    return `M ${xy(point(a, radius))} A ${radius} ${radius} 0 ${span > 0.5 ? 1 : 0} 1 ${xy(point(b, radius))}`
  }

  /** A chord bowed towards the centre, from one member to another. */
  function chordPath(a, b) {
    const [x1, y1] = point(a, R - 8)
    const [x2, y2] = point(b, R - 8)
    // Bow towards the centre in proportion to the chord's length: short links stay near the rim.
    let span = Math.abs(b - a) % 1
    if (span > 0.5) span = 1 - span
    const pull = 0.25 + 0.5 * (1 - Math.min(1, span * 4))
    const mx = CX + ((x1 + x2) / 2 - CX) * pull
    const my = CY + ((y1 + y2) / 2 - CY) * pull
    return `M ${x1.toFixed(1)} ${y1.toFixed(1)} Q ${mx.toFixed(1)} ${my.toFixed(1)} ${x2.toFixed(1)} ${y2.toFixed(1)}`
  }

  function drawRing() {
    const members = view.members
    const byId = new Map(members.map((m) => [m.id, m]))
    const focused = byId.get(focus) ?? byId.get(view.self)
    const maxOwned = Math.max(1, ...members.map((m) => m.keysOwned))
    const parts = [`<circle class="ring-base" cx="${CX}" cy="${CY}" r="${R}"/>`]

    // Arcs: each member owns (predecessor, member]; colour = keys owned, relative to the most.
    for (const m of members) {
      if (m.arc === null || !m.reachable) continue
      // A sliver of a gap at the start keeps neighbouring arcs apart.
      const from = m.arc >= 0.9999 ? m.position : m.position - m.arc + Math.min(0.002, m.arc / 4)
      const title = `${short(m.id)} owns ${pct(m.arc)} of the ring: ${num(m.keysOwned)} keys`
      parts.push(`<path class="arc" d="${arcPath(from < 0 ? from + 1 : from, m.position, R + 14)}" stroke="${heat(m.keysOwned / maxOwned)}" stroke-width="12" fill="none"><title>${esc(title)}</title></path>`)
    }

    // Links of the focused member: fingers (chords), successor list (inner arcs), predecessor.
    const labelled = new Set([view.self])
    if (focused) {
      labelled.add(focused.id)
      if (focused.predecessor && byId.has(focused.predecessor)) {
        parts.push(`<path class="predecessor-link" d="${arcPath(byId.get(focused.predecessor).position, focused.position, R - 6)}"><title>predecessor of ${esc(short(focused.id))}</title></path>`)
      }
      focused.successors.forEach((id, i) => {
        const s = byId.get(id)
        if (!s) return
        labelled.add(id)
        parts.push(`<path class="successor-link" opacity="${(0.85 - i * 0.12).toFixed(2)}" d="${arcPath(focused.position, s.position, R - 20 - i * 7)}"><title>successor ${i + 1} of ${esc(short(focused.id))}</title></path>`)
      })
      for (const id of focused.fingers) {
        const f = byId.get(id)
        if (!f) continue
        labelled.add(id)
        const rtt = focused.self ? f.rttMs : null
        parts.push(`<path class="finger-link" d="${chordPath(focused.position, f.position)}" stroke="${rttColour(rtt)}"><title>finger of ${esc(short(focused.id))} → ${esc(short(id))}${rtt !== null ? `, ${ms(rtt)} round trip` : ''}</title></path>`)
      }
    }

    // Members: a dot at their position; labels outside, spread apart where they would overlap.
    const labels = []
    for (const m of members) {
      const [x, y] = point(m.position, R)
      const classes = ['member', m.self ? 'self' : '', m.reachable ? '' : 'down', focused && m.id === focused.id ? 'focus' : ''].join(' ').trim()
      const fill = m.self ? 'var(--accent)' : heat(m.keysOwned / maxOwned)
      const title = `${m.id}\n${m.addr.join(':')}${m.reachable ? '' : ' (not answering)'}\narc ${pct(m.arc)} · owns ${num(m.keysOwned)} · holds ${num(m.keysHeld)} keys\nlookup hops ${num(m.lookupHops)} · ${num(m.opsPerSecond)} ops/s`
      parts.push(`<circle class="${classes}" data-member data-id="${esc(m.id)}" data-reachable="${m.reachable}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${m.self ? 9 : 6.5}" fill="${fill}"><title>${esc(title)}</title></circle>`)
      if (members.length <= LABEL_ALL_UP_TO || labelled.has(m.id)) {
        const [lx, ly] = point(m.position, R + 30)
        labels.push({ m, x, y, lx, ly, right: lx >= CX })
      }
    }
    for (const right of [true, false]) {
      const side = labels.filter((l) => l.right === right).sort((a, b) => a.ly - b.ly)
      for (let i = 1; i < side.length; i++) side[i].ly = Math.max(side[i].ly, side[i - 1].ly + LABEL_GAP)
      const overflow = side.length > 0 ? side[side.length - 1].ly - (HEIGHT - 8) : 0
      if (overflow > 0) for (const l of side) l.ly -= overflow
      for (let i = side.length - 2; i >= 0; i--) side[i].ly = Math.min(side[i].ly, side[i + 1].ly - LABEL_GAP)
      for (const l of side) {
        const [ex, ey] = point(l.m.position, R + 22)
        const tx = l.lx + (right ? 6 : -6)
        parts.push(`<path class="leader" d="M ${ex.toFixed(1)} ${ey.toFixed(1)} L ${l.lx.toFixed(1)} ${l.ly.toFixed(1)}"/>`)
        parts.push(`<text class="label${l.m.self ? ' self' : ''}" x="${tx.toFixed(1)}" y="${(l.ly + 4).toFixed(1)}" text-anchor="${right ? 'start' : 'end'}">${esc(short(l.m.id))}<tspan class="port"> :${esc(l.m.addr[1])}</tspan></text>`)
      }
    }

    const live = members.filter((m) => m.reachable).length
    const owned = members.reduce((sum, m) => sum + m.keysOwned, 0)
    const rate = view.network ? OPS.reduce((sum, op) => sum + view.network.perSecond[op], 0) : null
    parts.push(`<text class="center-big" x="${CX}" y="${CY - 18}" id="members-count">${live}</text>`)
    parts.push(`<text class="center-small" x="${CX}" y="${CY + 4}">member${live === 1 ? '' : 's'}${live < members.length ? ` (+${members.length - live} not answering)` : ''}</text>`)
    parts.push(`<text class="center-small" x="${CX}" y="${CY + 26}">${num(owned)} keys · ${rate === null ? '—' : num(rate)} ops/s</text>`)
    $('ring').innerHTML = parts.join('')
  }

  function drawRates() {
    const row = (label, activity, id) => {
      if (!activity) return `<tr><td>${label}</td><td colspan="4" class="muted">—</td></tr>`
      const p = activity.perSecond
      return `<tr><td>${label}</td>${OPS.map((op) => `<td class="${op}" id="${id}-rate-${op}">${num(p[op])}</td>`).join('')}<td class="err">${num(p.errors)}</td></tr>`
    }
    const totals = (label, activity, id) => {
      if (!activity) return ''
      const t = activity.totals
      return `<tr class="muted"><td>${label}</td>${OPS.map((op) => `<td id="${id}-total-${op}">${num(t[op])}</td>`).join('')}<td>${num(t.errors)}</td></tr>`
    }
    $('rates').innerHTML =
      `<tr><th></th><th>get</th><th>set</th><th>delete</th><th>errors</th></tr>` +
      row('this node', view.local, 'local') +
      row('network', view.network, 'net') +
      totals('total here', view.local, 'local') +
      totals('total network', view.network, 'net')
    $('window-note').textContent = `mean over ${Math.round((view.network ?? view.local).coveredSeconds)} s`

    // Sparkline: the network's (else this node's) operations per second, last minute.
    const activity = view.network ?? view.local
    const series = activity.series
    const width = 400
    const height = 70
    const top = Math.max(1, ...series.map((s) => s.get + s.set + s.delete))
    const line = (pick) => {
      if (series.length === 0) return ''
      const t0 = view.time - view.windowSeconds * 1000
      return series.map((s) => `${(((s.t - t0) / (view.windowSeconds * 1000)) * width).toFixed(1)},${(height - 4 - (pick(s) / top) * (height - 10)).toFixed(1)}`).join(' ')
    }
    $('sparkline').innerHTML =
      `<polyline points="${line((s) => s.get)}" fill="none" stroke="var(--get)" stroke-width="1.5"/>` +
      `<polyline points="${line((s) => s.set)}" fill="none" stroke="var(--set)" stroke-width="1.5"/>` +
      `<polyline points="${line((s) => s.delete)}" fill="none" stroke="var(--delete)" stroke-width="1.5"/>`
    $('spark-legend').innerHTML = `${view.network ? 'network' : 'this node'}, last ${view.windowSeconds} s, peak ${num(top)}/s: <span class="get">get</span> · <span class="set">set</span> · <span class="delete">delete</span>`
  }

  function drawLatency() {
    const rows = [`<tr><th></th><th>ops</th><th>p50</th><th>p90</th><th>p99</th><th>max ≤</th></tr>`]
    for (const [label, activity] of [['this node', view.local], ['network', view.network]]) {
      if (!activity) continue
      for (const op of OPS) {
        const l = activity.latencyMs[op]
        rows.push(`<tr><td>${label} <span class="${op}">${op}</span></td><td>${num(l.count)}</td><td>${ms(l.p50)}</td><td>${ms(l.p90)}</td><td>${ms(l.p99)}</td><td>${ms(l.max)}</td></tr>`)
      }
    }
    $('latency').innerHTML = rows.join('')
  }

  function drawNode() {
    const n = view.node
    const self = view.members.find((m) => m.self)
    const items = [
      ['id', `<span class="mono">${esc(n.id)}</span>`],
      ['address', esc(n.addr.join(':'))],
      ['role', n.member ? 'ring member' : 'client'],
      ['keys held / owned', `${num(n.keysHeld)} / ${num(n.keysOwned)}`],
      ['bytes held', bytes(n.bytesHeld)],
      ['arc', pct(self?.arc ?? null)],
      ['ring size estimate', num(n.ringSizeEstimate)],
      ['connections', num(n.connections)],
      ['fingers · successors', `${n.fingers.length} · ${n.successors.length}`],
      ['lookup hops (mean)', num(self?.lookupHops ?? null)],
      ['anti-entropy syncs', num(n.antiEntropy.syncs)],
      ['repaired pushed / fetched', `${num(n.antiEntropy.repairedPushed)} / ${num(n.antiEntropy.repairedFetched)}`],
      ['suspicions', num(n.suspicions)],
    ]
    $('node').innerHTML = items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')
    $('headline').textContent = `node ${short(n.id)} at ${n.addr.join(':')} · ${view.members.length} members seen · ring size estimate ${num(n.ringSizeEstimate)}`
  }

  /** Any event kind: a coloured badge, then whatever fields it carries. */
  function eventLine(e) {
    let hue = 0
    for (const c of e.kind) hue = (hue * 31 + c.charCodeAt(0)) % 360
    const details = []
    for (const [name, value] of Object.entries(e)) {
      if (name === 'time' || name === 'kind') continue
      if (value && typeof value === 'object' && value.id) details.push(`${short(value.id)}${value.addr ? ` ${value.addr.join(':')}` : ''}`)
      else if (typeof value !== 'object') details.push(`${name === 'reason' ? '' : `${name}: `}${value}`)
    }
    const time = CLOCK.format(e.time)
    return `<li><time>${esc(time)}</time><span class="kind" data-hue="${hue}">${esc(e.kind)}</span><span>${esc(details.join(' · '))}</span></li>`
  }

  let events = []
  function drawEvents() {
    $('events').innerHTML = events.length === 0 ? '<li class="muted">none yet</li>' : events.slice(-60).reverse().map(eventLine).join('')
    // Colours set through the CSSOM: the page's CSP allows no inline style attributes.
    for (const badge of $('events').querySelectorAll('.kind')) badge.style.color = `hsl(${badge.dataset.hue}, 70%, 65%)`
  }

  function drawMembers() {
    const head = `<thead><tr><th>id</th><th>address</th><th>arc</th><th>keys owned</th><th>held</th><th>bytes</th><th>lookup hops</th><th>ops/s</th><th>round trip</th><th>connections</th></tr></thead>`
    const rows = view.members.map((m) => {
      const classes = [m.self ? 'self' : '', m.reachable ? '' : 'down', m.id === focus ? 'focus' : ''].join(' ').trim()
      return `<tr class="${classes}" data-id="${esc(m.id)}"><td class="mono">${esc(short(m.id))}${m.self ? ' (this node)' : ''}</td><td>${esc(m.addr.join(':'))}</td><td>${pct(m.arc)}</td><td>${num(m.keysOwned)}</td><td>${num(m.keysHeld)}</td><td>${bytes(m.bytesHeld)}</td><td>${num(m.lookupHops)}</td><td>${num(m.opsPerSecond)}</td><td>${m.self ? '—' : ms(m.rttMs)}</td><td>${num(m.connections)}</td></tr>`
    })
    $('members').innerHTML = `${head}<tbody>${rows.join('')}</tbody>`
    const c = view.crawl
    $('crawl-note').textContent = c ? `${c.reached} answered${c.unreachable ? `, ${c.unreachable} not answering` : ''}${c.truncated ? ', list truncated' : ''} · asked in ${c.ms.toFixed(0)} ms` : ''
  }

  function render() {
    if (!view) return
    // Timed as a performance measure named 'render' (devtools; the load check reads it).
    const started = performance.now()
    drawRing()
    drawRates()
    drawLatency()
    drawNode()
    drawMembers()
    $('keys-card').hidden = !view.keysEnabled
    document.body.dataset.updated = String(view.time)
    performance.measure('render', { start: started, end: performance.now() })
    if (performance.getEntriesByName('render').length > 600) performance.clearMeasures('render')
  }

  function select(id) {
    focus = focus === id ? null : id
    render()
  }

  $('ring').addEventListener('click', (e) => {
    const target = e.target.closest('[data-member]')
    if (target) select(target.dataset.id)
  })
  $('members').addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-id]')
    if (row) select(row.dataset.id)
  })
  $('keys-button').addEventListener('click', async () => {
    const response = await fetch('api/keys?limit=200')
    const list = $('keys')
    if (!response.ok) {
      list.innerHTML = `<li class="muted">${esc(await response.text())}</li>`
      return
    }
    const { keys, more } = await response.json()
    list.innerHTML = keys.map((k) => `<li>${esc(k.key)}${k.encoding === 'hex' ? ' <span class="muted">(hex)</span>' : ''}</li>`).join('') + (more ? '<li class="muted">…more</li>' : '')
  })

  function connect() {
    const status = $('status')
    const source = new EventSource('api/events')
    source.addEventListener('open', () => {
      status.dataset.state = 'live'
      status.textContent = 'live'
    })
    source.addEventListener('error', () => {
      status.dataset.state = 'reconnecting'
      status.textContent = 'reconnecting…'
    })
    source.addEventListener('ring', (message) => {
      view = JSON.parse(message.data)
      // The snapshot carries the recent events; later ones arrive one by one.
      events = view.events.slice()
      render()
      drawEvents()
    })
    source.addEventListener('node-event', (message) => {
      events.push(JSON.parse(message.data))
      if (events.length > 200) events.shift()
      drawEvents()
    })
  }
  connect()
})()
