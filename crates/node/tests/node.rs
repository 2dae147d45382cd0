//! Nodes over real loopback sockets: mesh delivery and the replicated dict.

use chord_node::ChordConfig;
use chord_node::{Config, Event, Node};
use chord::testing::Links;
use std::time::Duration;

fn mesh_config() -> Config {
    Config::new("127.0.0.1", 0)
}

fn chord_config() -> Config {
    let mut config = Config::new("127.0.0.1", 0);
    config.chord = Some(ChordConfig { stabilize_interval: Duration::from_millis(50), ..ChordConfig::default() });
    config
}

async fn next_message(node: &Node) -> chord_node::Incoming {
    loop {
        let events = tokio::time::timeout(Duration::from_secs(5), node.next_events(64)).await.expect("an event in time").expect("open");
        for event in events {
            if let Event::Message(message) = event {
                return message;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_reaches_its_target() {
    let a = Node::start(mesh_config()).await.unwrap();
    let b = Node::start(mesh_config()).await.unwrap();
    let (host, port) = b.addr();
    let info = a.connect(&host, port).await.unwrap();
    assert_eq!(info.id, b.id());
    a.send(vec![b"hi".to_vec()], Some(chord_node::mesh::WhisperTo { id: b.id(), addr: None })).await.unwrap();
    let message = next_message(&b).await;
    assert_eq!(message.packets, vec![b"hi".to_vec()]);
    assert_eq!(message.sender.id, a.id());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_mismatch_is_refused() {
    let a = Node::start(mesh_config()).await.unwrap();
    let mut other = mesh_config();
    other.subnet = "elsewhere".into();
    let b = Node::start(other).await.unwrap();
    let (host, port) = b.addr();
    let error = a.connect(&host, port).await.unwrap_err();
    assert_eq!(error.code(), "ERR_PROTOCOL_MISMATCH");
    assert!(a.peers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_network_key_fails_the_handshake_and_says_so() {
    let mut keyed = mesh_config();
    keyed.network_key = Some(chord_noise::network_key_from_bytes(b"members only, please", &keyed.subnet).unwrap());
    let member = Node::start(keyed).await.unwrap();
    let outsider = Node::start(mesh_config()).await.unwrap();
    let (host, port) = member.addr();
    let error = outsider.connect(&host, port).await.unwrap_err();
    assert_eq!(error.code(), "ERR_HANDSHAKE", "{error}");
    assert!(error.to_string().contains("network key does not match"), "{error}");
    assert!(outsider.peers().is_empty() && member.peers().is_empty());
    // The member reports the attempt, without the outsider learning anything else.
    loop {
        let events = tokio::time::timeout(Duration::from_secs(5), member.next_events(16)).await.expect("an event").expect("open");
        if events.iter().any(|e| matches!(e, Event::Error { message, .. } if message.contains("did not authenticate"))) {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_and_plaintext_nodes_refuse_each_other_naming_the_encryption() {
    let noise = Node::start(mesh_config()).await.unwrap();
    let mut plain = mesh_config();
    plain.encryption = "Plaintext".into();
    let plain = Node::start(plain).await.unwrap();
    let (host, port) = noise.addr();
    let error = plain.connect(&host, port).await.unwrap_err();
    assert_eq!(error.code(), "ERR_PROTOCOL_MISMATCH", "{error}");
    assert!(error.to_string().contains("requires Noise"), "{error}");
    let (host, port) = plain.addr();
    let error = noise.connect(&host, port).await.unwrap_err();
    assert_eq!(error.code(), "ERR_PROTOCOL_MISMATCH", "{error}");
    assert!(error.to_string().contains("uses Plaintext"), "{error}");
}

async fn ring(n: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let node = Node::start(chord_config()).await.unwrap();
        if i > 0 {
            let (host, port) = nodes[rand::random::<usize>() % i].addr();
            node.connect(&host, port).await.unwrap();
        }
        nodes.push(node);
    }
    settle(&nodes).await;
    nodes
}

/// Wait until the nodes form one correct ring (`chord::testing::health`).
async fn settle(nodes: &[Node]) {
    let mut health = Default::default();
    for _ in 0..200 {
        let members: Vec<Links> = nodes
            .iter()
            .map(|n| {
                let stats = n.stats();
                Links { id: n.id(), successors: stats.successors.iter().map(|s| s.id).collect(), predecessor: stats.predecessor.map(|p| p.id) }
            })
            .collect();
        health = chord::testing::health(&members);
        if health.correct() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ring did not settle: {health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_stores_reads_and_survives_a_crash() {
    let nodes = ring(6).await;
    for i in 0..200 {
        nodes[i % 6].set(format!("k{i}").into_bytes(), format!("v{i}").into_bytes()).await.unwrap();
    }
    for i in 0..200 {
        let got = nodes[(i + 3) % 6].get(format!("k{i}").into_bytes()).await.unwrap();
        assert_eq!(got, Some(format!("v{i}").into_bytes()));
    }
    // Crash two nodes at once (no hand-off): r = 3 keeps every key.
    let (dead, alive) = nodes.split_at(2);
    for node in dead {
        node.destroy().await;
    }
    settle(alive).await;
    for i in 0..200 {
        let got = alive[i % 4].get(format!("k{i}").into_bytes()).await.unwrap();
        assert_eq!(got, Some(format!("v{i}").into_bytes()), "key k{i}");
    }
    let mut seen = 0;
    let mut cursor = None;
    loop {
        let page = alive[0].scan(cursor, false, 50).await.unwrap();
        seen += page.items.len();
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, 200);
    assert_eq!(alive[1].delete(b"k1".to_vec()).await.unwrap(), Some(b"v1".to_vec()));
    assert_eq!(alive[2].delete(b"k1".to_vec()).await.unwrap(), None);
    assert_eq!(alive[3].get(b"k1".to_vec()).await.unwrap(), None);
}

/// A peer that completes the handshake as a ring member and then never answers anything:
/// what a hung process or a cut link looks like from the other end of an open connection.
async fn silent_member() -> (u16, tokio::task::JoinHandle<()>) {
    use chord::protocol::{self, Hello, Message, PROTOCOL_VERSION};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = bytes::BytesMut::new();
        loop {
            if let Ok(Some(Message::Hello(_))) = protocol::decode(&mut buffer, 1 << 20) {
                break;
            }
            if stream.read_buf(&mut buffer).await.unwrap() == 0 {
                return;
            }
        }
        let welcome = Hello {
            version: PROTOCOL_VERSION,
            protocol_id: protocol::protocol_id("", "Plaintext"),
            subnet: String::new(),
            encryption: "Plaintext".into(),
            node: chord::NodeRef { id: chord::Id(7), host: "127.0.0.1".into(), port },
            member: true,
        };
        stream.write_all(&protocol::encode(&Message::Welcome(welcome))).await.unwrap();
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await.unwrap_or(0) > 0 {}
    });
    (port, task)
}

#[tokio::test(start_paused = true)]
async fn a_member_that_never_answers_is_suspected_after_the_failure_timeout() {
    let (port, _silent) = silent_member().await;
    let mut config = chord_config();
    config.encryption = "Plaintext".into(); // the silent member speaks the plaintext wire
    config.chord.as_mut().unwrap().join = false; // a client: it cannot answer for itself
    let client = Node::start(config).await.unwrap();
    client.connect("127.0.0.1", port).await.unwrap();
    let started = tokio::time::Instant::now();
    let get = client.get(b"anything".to_vec());
    tokio::pin!(get);
    // Probed at half the failure timeout, suspected at all of it: well before the 5 s request
    // timeout a cut link would otherwise cost.
    let failure_timeout = chord::config::DEFAULT_FAILURE_TIMEOUT;
    let before = tokio::time::timeout(failure_timeout - Duration::from_millis(100), &mut get).await;
    assert!(before.is_err() && client.stats().suspicions == 0, "not suspected before the failure timeout");
    let after = tokio::time::timeout(Duration::from_millis(600), &mut get).await;
    assert_eq!(client.stats().suspicions, 1, "suspected at the failure timeout");
    // The only member it knows, it keeps retrying (as a contact) until the operation deadline.
    assert!(after.is_err(), "a client does not give up on the only member it knows at its first suspicion");
    let error = get.await.unwrap_err();
    assert_eq!(error.code(), "ERR_UNAVAILABLE", "{error}");
    assert!(started.elapsed() >= chord::config::OPERATION_DEADLINE, "{:?}", started.elapsed());
    client.destroy().await;
}

/// A Noise responder that completes the handshake honestly, then welcomes with someone else's id.
async fn impostor() -> u16 {
    use chord_noise::{check_message, open_network_key, Handshake, KeyPair, MAX_HANDSHAKE_MESSAGE};
    use chord::protocol::{self, Hello, Message, PROTOCOL_VERSION};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let keys = KeyPair::generate();
        let mut handshake = Handshake::responder(&keys, &open_network_key());
        let mut raw = bytes::BytesMut::new();
        let next_message = async |raw: &mut bytes::BytesMut, stream: &mut tokio::net::TcpStream| loop {
            if let Some(len) = check_message(raw, MAX_HANDSHAKE_MESSAGE).unwrap() {
                let message = raw.split_to(2 + len);
                return message[2..].to_vec();
            }
            assert!(stream.read_buf(raw).await.unwrap() > 0);
        };
        let first = next_message(&mut raw, &mut stream).await;
        handshake.read(&first).unwrap();
        let mut out = Vec::new();
        handshake.write(&mut out).unwrap();
        stream.write_all(&out).await.unwrap();
        let third = next_message(&mut raw, &mut stream).await;
        handshake.read(&third).unwrap();
        let (mut sealer, _opener, _) = handshake.finish().unwrap();
        let welcome = Hello {
            version: PROTOCOL_VERSION,
            protocol_id: protocol::protocol_id("", "Noise"),
            subnet: String::new(),
            encryption: "Noise".into(),
            node: chord::NodeRef { id: KeyPair::generate().id(), host: "127.0.0.1".into(), port },
            member: true,
        };
        let mut sealed = bytes::BytesMut::new();
        sealer.seal(&protocol::encode(&Message::Welcome(welcome)), &mut sealed);
        stream.write_all(&sealed).await.unwrap();
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await.unwrap_or(0) > 0 {}
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_whose_id_is_not_the_responders_key_is_refused() {
    let port = impostor().await;
    let node = Node::start(mesh_config()).await.unwrap();
    let error = node.connect("127.0.0.1", port).await.unwrap_err();
    assert_eq!(error.code(), "ERR_HANDSHAKE", "{error}");
    assert!(error.to_string().contains("but proved the key of"), "{error}");
    assert!(node.peers().is_empty());
}
