//! What a value read from the on-disk store costs: the one read the engine does synchronously,
//! under the driver's lock (`store::Values::get`, see docs/ARCHITECTURE.md, "Storage").
//!
//!   cargo run --release -p chord-node --example disk_reads -- [ENTRIES] [VALUE_BYTES] [--cold]
//!
//! `--cold` (root only) drops the OS page cache before reading: reads then go to the disk.
//! Writes ENTRIES values (default 200,000 of 1 KiB, so about six times the store's block
//! cache) into a fresh store in a temporary folder, then times point reads: keys drawn
//! uniformly (mostly past the block cache: the OS page cache or the disk) and a hot set of
//! 1,000 keys (the block cache). Prints p50 / p99 / p99.9 / max per read, beside a read of the
//! same size from memory as the floor.

use bytes::Bytes;
use chord::id::Id;
use chord::store::Values;
use chord::version::Version;
use chord_node::config::{Durability, StorageConfig};
use chord_node::disk::{Disk, DiskValues};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn main() {
    let cold = std::env::args().any(|a| a == "--cold");
    let mut args = std::env::args().skip(1).filter(|a| a != "--cold").map(|a| a.parse::<usize>().expect("a number"));
    let entries = args.next().unwrap_or(200_000);
    let value_bytes = args.next().unwrap_or(1024);
    let dir = std::env::temp_dir().join(format!("chordnet-disk-reads-{}", std::process::id()));
    let config = StorageConfig { dir: dir.clone(), durability: Durability::Os, resync: false };
    let opened = Disk::open(&config, Id(1), || vec![1; 33]).expect("a fresh store");
    let mut values = DiskValues(opened.disk.clone());
    let keys: Vec<Vec<u8>> = (0..entries).map(|i| format!("key-{i}").into_bytes()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let started = Instant::now();
    for (i, key) in keys.iter().enumerate() {
        let value: Vec<u8> = (0..value_bytes).map(|_| rng.gen()).collect();
        values.put(Id::of_key(key), key, &Version { millis: 1, counter: i as u32, writer: Id(1) }, Some(&value));
        if i % 4096 == 4095 || i + 1 == entries {
            let batch = opened.disk.take_batch(Duration::ZERO);
            opened.disk.commit(&batch).expect("committed");
        }
    }
    println!("wrote {entries} values of {value_bytes} bytes in {:.1} s", started.elapsed().as_secs_f64());
    if cold {
        std::fs::write("/proc/sys/vm/drop_caches", "3").expect("--cold needs root (writes /proc/sys/vm/drop_caches)");
        println!("dropped the OS page cache: uniform reads go to the disk");
    }
    let memory: Vec<Bytes> = (0..1000).map(|_| Bytes::from(vec![7u8; value_bytes])).collect();
    let uniform: Vec<usize> = (0..100_000).map(|_| rng.gen_range(0..entries)).collect();
    let hot: Vec<usize> = (0..100_000).map(|_| rng.gen_range(0..1000.min(entries))).collect();
    report("uniform keys (past the block cache)", time(&uniform, |i| values.get(Id::of_key(&keys[i]), &keys[i]).map(|v| v.len()).unwrap_or(0)));
    report("hot set of 1,000 keys (block cache)", time(&hot, |i| values.get(Id::of_key(&keys[i]), &keys[i]).map(|v| v.len()).unwrap_or(0)));
    report("the same sizes from memory (floor)", time(&hot, |i| memory[i % memory.len()].clone().len()));
    opened.disk.close();
    opened.disk.release();
    let _ = std::fs::remove_dir_all(dir);
}

/// Nanoseconds per call, sorted.
fn time(picks: &[usize], mut read: impl FnMut(usize) -> usize) -> Vec<u64> {
    let mut sink = 0;
    let mut nanos: Vec<u64> = picks
        .iter()
        .map(|&i| {
            let started = Instant::now();
            sink += read(i);
            started.elapsed().as_nanos() as u64
        })
        .collect();
    assert!(sink > 0);
    nanos.sort_unstable();
    nanos
}

fn report(what: &str, nanos: Vec<u64>) {
    let at = |q: f64| nanos[((nanos.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    println!("{what:40} p50 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs  max {:8.1} µs", at(0.5), at(0.99), at(0.999), at(1.0));
}
