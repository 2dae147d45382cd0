//! The on-disk store of a node started with a `dataDir`: its entries (values, tombstones,
//! versions), its identity, its clock's high-water mark and the members it knew, in an
//! embedded crash-safe store (fjall, a pure Rust LSM tree with a checksummed journal) in that
//! folder. Owns the folder's files; knows nothing of the ring.
//!
//! ```text
//! dataDir/
//!   LOCK       locked while a node uses the folder (a second node is refused)
//!   identity   what makes the node's id (its key pair): an opaque record, written once, with a
//!              checksum, readable by its owner only
//!   members    the members it knew (a hint, replaced atomically when they change; kept apart
//!              from the store so that a resync, which drops the store, still finds the ring)
//!   committed  the number of the store's last commit known durable: a store that opens
//!              holding fewer commits lost acknowledged writes (a truncated or damaged journal)
//!   store/     the fjall database: keyspaces `index` (position ‖ key -> version, live, length),
//!              `values` (position ‖ key -> value) and `meta` (marker, clock high-water mark,
//!              number of commits)
//! ```
//!
//! Only the node's owner may read the folder (unix): the folder and every folder under it are
//! made 0700 and the node's own files are created 0600. fjall creates its files (journals,
//! tables, manifests) with the mode the process umask gives (usually 0644), and a library must
//! not change a process's umask; so the store's folder is made 0700 before fjall opens it, and
//! opening and closing the store make every file under the folder 0600. What the 0700 folder
//! guarantees meanwhile: no other user can enter it, so none can open a file under it whatever
//! the file's own mode (root can, as always). Links under the folder are left alone.
//!
//! The engine sees this store through [`chord::store::Values`] ([`DiskValues`]): writes are
//! staged in memory at once; [`Disk::commit`], run by the driver's committer thread, writes
//! everything staged so far as one batch (group commit) and syncs it as the durability setting
//! says. Reads find staged values first, then read the store (its block cache, or the disk).
//!
//! Opening refuses, with an error naming the file and what to do, a folder whose identity has
//! no store or whose store has no marker (files deleted by hand), a store whose files are
//! damaged (fjall's checksums, checked over the whole index as it is loaded), a journal that
//! recovery had to cut by more than one batch (a damaged journal; a crash tears off at most the
//! last, unacknowledged batch), and a store that opens short of its last durable commit (a
//! journal truncated or deleted by hand). `resync` keeps the identity and starts an empty store.

use crate::config::{Durability, StorageConfig, MAX_COMMIT_BYTES, MAX_ITEM_WIRE_BYTES, STORE_CACHE_BYTES};
use chord::error::{Error, Result};
use chord::id::Id;
use chord::routing::NodeRef;
use chord::store::{IndexEntry, Values};
use chord::version::Version;
use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Bytes of an index record: millis (u64 BE), counter (u32 BE), writer (16), live (1), length
/// of the value (u32 BE).
const HEADER_BYTES: usize = 8 + 4 + 16 + 1 + 4;
/// The first line of the identity file and the start of the store's marker.
const IDENTITY_MAGIC: &str = "chordnet identity 1";
const MARKER_MAGIC: &[u8] = b"chordnet store 1";
/// Meta keys.
const MARKER: &[u8] = b"marker";
const HIGH_WATER: &[u8] = b"clock";
/// How many batches the store holds: written in every batch, so it comes back from the journal
/// exactly as far as the batches themselves do. The `committed` file is checked against it.
/// (Not fjall's sequence number: fjall also spends sequence numbers on its own flushes and
/// compactions, and recovers only the highest one its data carries, so a flush after the last
/// commit made a store that lost nothing look as if it had.)
const COMMITS: &[u8] = b"commits";
/// Memtable sizes: what is written is held in memory until flushed to a table, so these bound
/// the memory the store's recent writes take (fjall's default is 64 MiB each).
const VALUES_MEMTABLE_BYTES: u64 = 16 << 20;
const INDEX_MEMTABLE_BYTES: u64 = 8 << 20;
/// Group commit under load: when the last batch carried at least this many tickets, the
/// committer waits `GATHER_FOR` before taking the next batch. Measured on 2 shared cores with
/// 256 sets in flight (one process, every node on one disk): from 27 % to 48 % of the in-memory
/// sets/s with 4 nodes and from 33 % to 43 % with 16 — fewer fdatasyncs and thread wake-ups per
/// write. The price: with 16 in flight, sets/s fall (3,700 instead of 7,400 on 4 nodes), the
/// wait being longer than the commits it saves. A lone write (one ticket) is never delayed.
const GATHER_ABOVE_TICKETS: usize = 2;
const GATHER_FOR: Duration = Duration::from_millis(3);
/// Background threads of one store (flushes and compactions): several nodes may share a
/// process, and the tokio runtime and Node's own thread need the cores too.
const STORE_WORKER_THREADS: usize = 1;

/// What a node keeps in its folder, as found at start.
pub struct Opened {
    pub disk: Arc<Disk>,
    /// The node's identity record, opaque here (its static key pair, from which its id derives).
    pub identity: Vec<u8>,
    pub index: Vec<IndexEntry>,
    pub high_water: Option<Version>,
    pub members: Vec<NodeRef>,
}

/// The open store of one node.
pub struct Disk {
    dir: PathBuf,
    store_dir: PathBuf,
    durability: Durability,
    /// The fjall handles; `None` once closed. Replaced when a failed commit forces a reopen.
    handle: Mutex<Option<Handle>>,
    staging: Mutex<Staging>,
    /// Woken when a ticket waits or the store closes.
    wake: Condvar,
    /// The `committed` file, rewritten in place after each durable commit.
    committed: Mutex<Option<File>>,
    /// Batches written to the store (the `commits` meta record of the last one).
    commits: AtomicU64,
    /// Held (locked) for as long as the store is open; dropped (unlocked) by `release`.
    lock: Mutex<Option<File>>,
}

#[derive(Clone)]
struct Handle {
    db: Database,
    index: Keyspace,
    values: Keyspace,
    meta: Keyspace,
}

/// A write waiting for a commit.
#[derive(Clone)]
enum Staged {
    Put { header: [u8; HEADER_BYTES], value: Option<Bytes> },
    Remove,
}

impl Staged {
    fn bytes(&self) -> usize {
        match self {
            Staged::Put { value, .. } => HEADER_BYTES + value.as_ref().map_or(0, |v| v.len()),
            Staged::Remove => 0,
        }
    }
}

#[derive(Default)]
struct Staging {
    /// Entries staged since the last commit started, by storage key (position ‖ key).
    staged: HashMap<Vec<u8>, Staged>,
    staged_bytes: usize,
    /// Entries the commit under way is writing (still read from here until it is done).
    committing: HashMap<Vec<u8>, Staged>,
    /// Meta records staged (members, ...).
    meta: HashMap<&'static [u8], Vec<u8>>,
    /// Durability barriers waiting for the next commit.
    tickets: Vec<u64>,
    /// Tickets the last batch carried (a measure of load, for gathering).
    last_tickets: usize,
    /// The newest version ever staged: committed with every batch.
    high_water: Option<Version>,
    /// Why writes are refused (a full disk), until a commit succeeds again.
    refused: Option<Error>,
    closed: bool,
}

/// What one [`Disk::take_batch`] took: committed by [`Disk::commit`].
pub struct Batch {
    pub tickets: Vec<u64>,
    entries: Vec<(Vec<u8>, Staged)>,
    meta: Vec<(&'static [u8], Vec<u8>)>,
    high_water: Option<Version>,
    /// The store is closing: this is the last batch.
    pub last: bool,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty() && self.entries.is_empty() && self.meta.is_empty()
    }
}

fn storage_key(position: Id, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + key.len());
    out.extend_from_slice(&position.to_bytes());
    out.extend_from_slice(key);
    out
}

fn header(version: &Version, value: Option<&[u8]>) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[0..8].copy_from_slice(&version.millis.to_be_bytes());
    out[8..12].copy_from_slice(&version.counter.to_be_bytes());
    out[12..28].copy_from_slice(&version.writer.to_bytes());
    out[28] = value.is_some() as u8;
    out[29..33].copy_from_slice(&(value.map_or(0, |v| v.len()) as u32).to_be_bytes());
    out
}

fn parse_version(bytes: &[u8]) -> Option<Version> {
    if bytes.len() < 28 {
        return None;
    }
    let mut writer = [0u8; 16];
    writer.copy_from_slice(&bytes[12..28]);
    Some(Version {
        millis: u64::from_be_bytes(bytes[0..8].try_into().ok()?),
        counter: u32::from_be_bytes(bytes[8..12].try_into().ok()?),
        writer: Id(u128::from_be_bytes(writer)),
    })
}

/// An index record back into an entry; `None` if it is not one.
fn parse_index(key: &[u8], value: &[u8]) -> Option<IndexEntry> {
    if key.len() < 16 || value.len() != HEADER_BYTES || value[28] > 1 {
        return None;
    }
    let user_key = key[16..].to_vec();
    if Id::of_key(&user_key).to_bytes() != key[..16] {
        return None;
    }
    Some(IndexEntry {
        version: parse_version(value)?,
        live: value[28] == 1,
        len: u32::from_be_bytes(value[29..33].try_into().ok()?),
        key: user_key,
    })
}

fn is_no_space(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull || error.raw_os_error() == Some(28)
}

/// Whether a fjall error is (or follows) the disk running full.
fn fjall_no_space(error: &fjall::Error) -> bool {
    match error {
        fjall::Error::Io(e) => is_no_space(e),
        fjall::Error::Storage(fjall::LsmError::Io(e)) => is_no_space(e),
        _ => false,
    }
}

impl Disk {
    /// Open (or create) the node's folder: lock it, check what is there, load the index. A
    /// folder new to chordnet gets `new_identity()` as its identity.
    pub fn open(config: &StorageConfig, protocol_id: Id, new_identity: impl FnOnce() -> Vec<u8>) -> Result<Opened> {
        let dir = config.dir.clone();
        let shown = dir.display().to_string();
        create_private_dir(&dir).map_err(|e| Error::io(e, &format!("cannot create the data folder {shown}")))?;
        let lock = lock_folder(&dir)?;
        let identity_path = dir.join("identity");
        let store_dir = dir.join("store");
        let store_exists = store_dir.join("version").exists() || store_dir.exists() && std::fs::read_dir(&store_dir).is_ok_and(|mut d| d.next().is_some());
        let identity = read_identity(&identity_path, protocol_id)?;
        let identity = match identity {
            Some(identity) => identity,
            None if store_exists => {
                return Err(Error::StorageCorrupt(format!(
                    "{}: missing, while {} holds a store: the node's identity is lost, so it cannot come back with its id. Restore the file, or delete the folder {shown} to start afresh (the ring refills a new node)",
                    identity_path.display(),
                    store_dir.display()
                )))
            }
            None => {
                let unknown: Vec<String> = std::fs::read_dir(&dir)
                    .map_err(|e| Error::io(e, &format!("cannot read the data folder {shown}")))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !["LOCK", "store", "committed"].contains(&name.as_str()) && !name.starts_with("identity") && !name.starts_with("members"))
                    .collect();
                if !unknown.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "dataDir {shown} is not empty and is not a chordnet folder (it holds {}): give an empty or new folder",
                        unknown.join(", ")
                    )));
                }
                let identity = new_identity();
                write_identity(&identity_path, protocol_id, &identity)?;
                identity
            }
        };
        // A chordnet folder: a folder of something else was refused above, its entries untouched.
        make_private(&dir).map_err(|e| Error::io(e, &format!("cannot make the data folder {shown} readable by its owner only")))?;
        if config.resync && store_dir.exists() {
            std::fs::remove_dir_all(&store_dir).map_err(|e| Error::io(e, &format!("cannot remove {} for resync", store_dir.display())))?;
        }
        let fresh = !store_dir.exists();
        if !fresh && !store_exists {
            return Err(Error::StorageCorrupt(format!("{}: empty, while {} names this node: {}", store_dir.display(), identity_path.display(), resync_advice())));
        }
        // Private before fjall writes anything in it.
        create_private_dir(&store_dir).map_err(|e| Error::io(e, &format!("cannot create {}", store_dir.display())))?;
        let journals_before = journal_sizes(&store_dir);
        let handle = open_handle(&store_dir)?;
        // What fjall created opening (or making) the store.
        make_private(&store_dir).map_err(|e| Error::io(e, &format!("cannot make {} readable by its owner only", store_dir.display())))?;
        check_journals(&journals_before)?;
        let marker = marker(protocol_id, &identity);
        let found = handle.meta.get(MARKER).map_err(|e| corrupt(&store_dir, &e))?;
        match found {
            Some(found) if found[..] == marker[..] => {}
            Some(_) => {
                return Err(Error::StorageCorrupt(format!(
                    "{}: this store belongs to another node or network than {}: {}",
                    store_dir.display(),
                    identity_path.display(),
                    resync_advice()
                )))
            }
            None if fresh || config.resync => {
                let mut batch = handle.db.batch();
                batch.insert(&handle.meta, MARKER, marker);
                batch.insert(&handle.meta, COMMITS, 0u64.to_be_bytes());
                batch.commit().map_err(|e| corrupt(&store_dir, &e))?;
                handle.db.persist(PersistMode::SyncAll).map_err(|e| corrupt(&store_dir, &e))?;
            }
            None => {
                return Err(Error::StorageCorrupt(format!(
                    "{}: the store has lost its marker (files deleted or damaged), so what it holds cannot be trusted: {}",
                    store_dir.display(),
                    resync_advice()
                )))
            }
        }
        let committed_path = dir.join("committed");
        let commits = match handle.meta.get(COMMITS).map_err(|e| corrupt(&store_dir, &e))? {
            Some(bytes) => Some(u64::from_be_bytes(bytes[..].try_into().map_err(|_| {
                Error::StorageCorrupt(format!("{}: the store's count of commits does not parse (a damaged file): {}", store_dir.display(), resync_advice()))
            })?)),
            // A store made before the store counted its commits: its `committed` file holds
            // something else (fjall's sequence number), which is not comparable. Its first
            // commit starts the count.
            None => None,
        };
        let noted = std::fs::read(&committed_path).ok().and_then(|b| Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?)));
        if let (Some(noted), Some(held)) = (noted, commits) {
            if noted > held && !fresh && !config.resync {
                let journals: Vec<String> = journal_sizes(&store_dir).keys().map(|p| p.display().to_string()).collect();
                let named = if journals.is_empty() { format!("{}: its journal is missing", store_dir.display()) } else { format!("{}: cut short or damaged", journals.join(", ")) };
                return Err(Error::StorageCorrupt(format!(
                    "{named}: the store holds {held} commits but had made {noted} durable, so acknowledged writes are lost. {}",
                    resync_advice()
                )));
            }
        }
        let committed = private_file().create(true).truncate(false).write(true).open(&committed_path).map_err(|e| Error::io(e, &format!("cannot open {}", committed_path.display())))?;
        if fresh || config.resync {
            // What a store dropped or deleted had made durable says nothing of this one.
            write_count(&committed, 0).map_err(|e| Error::io(e, &format!("cannot write {}", committed_path.display())))?;
        }
        let mut index = Vec::new();
        for guard in handle.index.iter() {
            let (key, value) = guard.into_inner().map_err(|e| corrupt(&store_dir, &e))?;
            let entry = parse_index(&key, &value).ok_or_else(|| {
                Error::StorageCorrupt(format!("{}: an index record does not parse (a damaged file): {}", store_dir.display(), resync_advice()))
            })?;
            index.push(entry);
        }
        let high_water = handle.meta.get(HIGH_WATER).map_err(|e| corrupt(&store_dir, &e))?.and_then(|v| parse_version(&v));
        let members = std::fs::read(dir.join("members")).ok().and_then(|bytes| rmp_serde::from_slice::<Vec<NodeRef>>(&bytes).ok()).unwrap_or_default();
        let disk = Disk {
            dir,
            store_dir,
            durability: config.durability,
            handle: Mutex::new(Some(handle)),
            staging: Mutex::new(Staging { high_water, ..Staging::default() }),
            wake: Condvar::new(),
            committed: Mutex::new(Some(committed)),
            commits: AtomicU64::new(commits.unwrap_or(0)),
            lock: Mutex::new(Some(lock)),
        };
        Ok(Opened { disk: Arc::new(disk), identity, index, high_water, members })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn staging(&self) -> MutexGuard<'_, Staging> {
        self.staging.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self) -> Option<Handle> {
        self.handle.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A durability barrier: `ticket` completes with the next commit.
    pub fn request(&self, ticket: u64) {
        let mut staging = self.staging();
        staging.tickets.push(ticket);
        // The committer takes every ticket at once: only the first one since its last batch
        // needs to wake it.
        if staging.tickets.len() == 1 {
            self.wake.notify_one();
        }
    }

    /// Keep the members this node knows (replacing the file atomically; not synced: a hint).
    pub fn remember_members(&self, members: &[NodeRef]) -> Result<()> {
        let path = self.dir.join("members");
        let temporary = self.dir.join("members.tmp");
        let bytes = rmp_serde::to_vec(members).map_err(|e| Error::Internal(format!("encoding members: {e}")))?;
        private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .and_then(|mut file| file.write_all(&bytes))
            .and_then(|_| std::fs::rename(&temporary, &path))
            .map_err(|e| Error::io(e, &format!("cannot write {}", path.display())))
    }

    /// Wait until a ticket waits, the store closes or `timeout` passes; then take what is
    /// staged, at most [`MAX_COMMIT_BYTES`] of entries (the rest waits for the next batch).
    pub fn take_batch(&self, timeout: Duration) -> Batch {
        let mut staging = self.staging();
        if staging.tickets.is_empty() && !staging.closed {
            staging = self.wake.wait_timeout(staging, timeout).unwrap_or_else(|p| p.into_inner()).0;
        }
        // Under load (the last batch carried several tickets) wait a moment for more: fewer,
        // larger commits cost far less CPU (syncs, wake-ups) per write. A lone write never waits.
        if staging.last_tickets >= GATHER_ABOVE_TICKETS && !staging.tickets.is_empty() && !staging.closed {
            drop(staging);
            std::thread::sleep(GATHER_FOR);
            staging = self.staging();
        }
        let staging = &mut *staging;
        let mut entries = Vec::new();
        if staging.staged_bytes <= MAX_COMMIT_BYTES {
            staging.committing = std::mem::take(&mut staging.staged);
            staging.staged_bytes = 0;
        } else {
            let mut bytes = 0;
            let keys: Vec<Vec<u8>> = staging
                .staged
                .iter()
                .take_while(|(_, s)| {
                    let first = bytes == 0;
                    bytes += s.bytes().max(1);
                    first || bytes <= MAX_COMMIT_BYTES
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                let staged = staging.staged.remove(&key).expect("listed");
                staging.staged_bytes -= staged.bytes();
                staging.committing.insert(key, staged);
            }
        }
        entries.extend(staging.committing.iter().map(|(k, s)| (k.clone(), s.clone())));
        // Tickets asked before this point had their writes staged before them: all in here,
        // unless cut by the byte bound, in which case they wait for the batch with the rest.
        let tickets = if staging.staged.is_empty() { std::mem::take(&mut staging.tickets) } else { Vec::new() };
        staging.last_tickets = tickets.len();
        Batch { tickets, entries, meta: staging.meta.drain().collect(), high_water: staging.high_water, last: staging.closed }
    }

    /// Write a batch as one atomic commit, synced as the durability setting says. On failure
    /// the entries go back to be staged again (newer stagings win) and writes are refused
    /// until a commit succeeds.
    pub fn commit(&self, batch: &Batch) -> Result<()> {
        if batch.entries.is_empty() && batch.meta.is_empty() {
            return self.staging().refused.clone().map_or(Ok(()), Err);
        }
        let result = match self.handle() {
            None => Err(Error::Closed),
            Some(handle) => self.write(&handle, batch),
        };
        let mut staging = self.staging();
        let staging = &mut *staging;
        match &result {
            Ok(()) => {
                staging.committing.clear();
                staging.refused = None;
            }
            Err(error) => {
                for (key, staged) in staging.committing.drain() {
                    if !staging.staged.contains_key(&key) {
                        staging.staged_bytes += staged.bytes();
                        staging.staged.insert(key, staged);
                    }
                }
                for (key, value) in &batch.meta {
                    staging.meta.entry(key).or_insert_with(|| value.clone());
                }
                staging.refused = Some(error.clone());
            }
        }
        result
    }

    fn write(&self, handle: &Handle, batch: &Batch) -> Result<()> {
        let mode = match self.durability {
            Durability::Sync => PersistMode::SyncData,
            Durability::Os => PersistMode::Buffer,
        };
        let mut write = handle.db.batch().durability(Some(mode));
        for (key, staged) in &batch.entries {
            match staged {
                Staged::Put { header, value } => {
                    write.insert(&handle.index, key.as_slice(), header.as_slice());
                    match value {
                        Some(value) => write.insert(&handle.values, key.as_slice(), value.as_ref()),
                        None => write.remove(&handle.values, key.as_slice()),
                    }
                }
                Staged::Remove => {
                    write.remove(&handle.index, key.as_slice());
                    write.remove(&handle.values, key.as_slice());
                }
            }
        }
        for (key, value) in &batch.meta {
            write.insert(&handle.meta, *key, value.as_slice());
        }
        // Every batch rewrites the high-water mark, so the newest version stays in the store
        // even when everything else was deleted and compacted away, and counts itself.
        write.insert(&handle.meta, HIGH_WATER, header(&batch.high_water.unwrap_or_default(), None).as_slice());
        let number = self.commits.load(Ordering::Acquire) + 1;
        write.insert(&handle.meta, COMMITS, number.to_be_bytes().as_slice());
        write.commit().map_err(|e| self.write_error(&e))?;
        self.commits.store(number, Ordering::Release);
        if self.durability == Durability::Sync {
            self.note_committed(number);
        }
        Ok(())
    }

    /// Record how many commits are durable (in place, not synced: after a power loss it may
    /// lag, never lead, since it is written after the journal's sync).
    fn note_committed(&self, commits: u64) {
        if let Some(file) = self.committed.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = write_count(file, commits);
        }
    }

    fn write_error(&self, error: &fjall::Error) -> Error {
        if fjall_no_space(error) || matches!(error, fjall::Error::Poisoned) && self.refused_for_space() {
            Error::StorageFull(format!(
                "the disk of {} is full: writes are refused until space is freed (reads go on)",
                self.dir.display()
            ))
        } else if matches!(error, fjall::Error::Poisoned) {
            Error::Io { code: "ERR_IO", message: format!("the store in {} failed an earlier write and is being reopened", self.store_dir.display()) }
        } else {
            Error::Io { code: "ERR_IO", message: format!("cannot write to the store in {}: {error:?}", self.store_dir.display()) }
        }
    }

    fn refused_for_space(&self) -> bool {
        matches!(self.staging().refused, Some(Error::StorageFull(_))) || free_bytes(&self.store_dir).is_some_and(|free| free < MAX_COMMIT_BYTES as u64)
    }

    /// Make every commit so far durable (the `os` setting's once-a-second flush).
    pub fn sync(&self) -> Result<()> {
        let Some(handle) = self.handle() else { return Ok(()) };
        // Counted before the sync: every batch counted so far is in the journal it flushes.
        let commits = self.commits.load(Ordering::Acquire);
        handle.db.persist(PersistMode::SyncData).map_err(|e| self.write_error(&e))?;
        self.note_committed(commits);
        Ok(())
    }

    /// Whether writes are refused (a failed commit) and the store should be reopened once there
    /// is room: fjall refuses every write after a failed one until it is opened again.
    pub fn needs_reopen(&self) -> bool {
        self.staging().refused.is_some()
    }

    /// Whether the file system has room again for what waits to be written.
    pub fn has_room(&self) -> bool {
        let waiting = {
            let staging = self.staging();
            staging.staged_bytes + staging.committing.values().map(Staged::bytes).sum::<usize>()
        } as u64;
        free_bytes(&self.store_dir).is_none_or(|free| free >= (2 * waiting).max(1 << 20))
    }

    /// Close the fjall handles and open them again (after a failed commit). The caller makes
    /// sure no read runs meanwhile (it holds the engine's lock).
    pub fn reopen(&self) -> Result<()> {

        let mut slot = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            return Err(Error::Closed);
        }
        *slot = None; // fjall's own lock is released when its last handle goes
        match open_handle(&self.store_dir) {
            Ok(handle) => {
                *slot = Some(handle);
                Ok(())
            }
            Err(error) => {
                // Keep reads going on a handle if one can be had at all; else try again later.
                *slot = open_handle(&self.store_dir).ok();
                Err(error)
            }
        }
    }

    /// Stop taking work: the committer writes what is staged and ends.
    pub fn close(&self) {
        self.staging().closed = true;
        self.wake.notify_all();
    }

    /// Drop the fjall handles (releasing the folder), once the last batch is written.
    pub fn release(&self) {
        if let Some(handle) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // What the os setting wrote to the OS is flushed on a clean close.
            let commits = self.commits.load(Ordering::Acquire);
            if handle.db.persist(PersistMode::SyncData).is_ok() {
                self.note_committed(commits);
            }
        }
        self.committed.lock().unwrap_or_else(|p| p.into_inner()).take();
        // What fjall created meanwhile, made the owner's only while the folder is still ours.
        let _ = make_private(&self.dir);
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn read(&self, storage_key: &[u8]) -> Result<Bytes> {
        {
            let staging = self.staging();
            for map in [&staging.staged, &staging.committing] {
                match map.get(storage_key) {
                    Some(Staged::Put { value: Some(value), .. }) => return Ok(value.clone()),
                    Some(_) => return Err(Error::Internal("a live entry has no staged value".into())),
                    None => {}
                }
            }
        }
        let handle = self.handle().ok_or(Error::Closed)?;
        match handle.values.get(storage_key) {
            Ok(Some(value)) => Ok(Bytes::copy_from_slice(&value)),
            Ok(None) => Err(Error::StorageCorrupt(format!("{}: a value listed in the index is missing: {}", self.store_dir.display(), resync_advice()))),
            Err(error) => Err(corrupt(&self.store_dir, &error)),
        }
    }
}

/// The engine's window on a [`Disk`]: stages writes and reads values (see `chord::store`).
pub struct DiskValues(pub Arc<Disk>);

impl Values for DiskValues {
    fn put(&mut self, position: Id, key: &[u8], version: &Version, value: Option<&[u8]>) {
        let staged = Staged::Put { header: header(version, value), value: value.map(Bytes::copy_from_slice) };
        let mut staging = self.0.staging();
        staging.staged_bytes += staged.bytes();
        if let Some(old) = staging.staged.insert(storage_key(position, key), staged) {
            staging.staged_bytes -= old.bytes();
        }
        if staging.high_water.is_none_or(|seen| seen < *version) {
            staging.high_water = Some(*version);
        }
    }

    fn remove(&mut self, position: Id, key: &[u8]) {
        let mut staging = self.0.staging();
        if let Some(old) = staging.staged.insert(storage_key(position, key), Staged::Remove) {
            staging.staged_bytes -= old.bytes();
        }
    }

    fn get(&self, position: Id, key: &[u8]) -> Result<Bytes> {
        self.0.read(&storage_key(position, key))
    }

    fn writable(&self) -> Result<()> {
        self.0.staging().refused.clone().map_or(Ok(()), Err)
    }
}

fn resync_advice() -> &'static str {
    "restart the node with resync (CLI --resync, option resync: true) to keep its identity, drop its local data and refill it from the ring"
}

fn corrupt(store_dir: &Path, error: &fjall::Error) -> Error {
    let what = match error {
        fjall::Error::Locked => return locked(store_dir),
        fjall::Error::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied || is_no_space(e) => {
            return Error::io(std::io::Error::new(e.kind(), e.to_string()), &format!("cannot open the store in {}", store_dir.display()))
        }
        fjall::Error::Io(e) | fjall::Error::Storage(fjall::LsmError::Io(e)) => format!("{e}"),
        fjall::Error::JournalRecovery(e) => {
            let journals: Vec<String> = journal_sizes(store_dir).keys().map(|p| p.display().to_string()).collect();
            return Error::StorageCorrupt(format!("{}: a damaged journal ({e}): {}", journals.join(", "), resync_advice()));
        }
        other => format!("{other:?}"),
    };
    Error::StorageCorrupt(format!("{}: the store's files are damaged ({what}): {}", store_dir.display(), resync_advice()))
}

fn locked(path: &Path) -> Error {
    Error::StorageLocked(format!("{}: the data folder is in use by another running node; give each node its own dataDir", path.display()))
}

fn open_handle(store_dir: &Path) -> Result<Handle> {
    let db = Database::builder(store_dir)
        .cache_size(STORE_CACHE_BYTES)
        .worker_threads(STORE_WORKER_THREADS)
        .open()
        .map_err(|e| corrupt(store_dir, &e))?;
    let keyspace = |name: &str, memtable: u64| db.keyspace(name, || KeyspaceCreateOptions::default().max_memtable_size(memtable)).map_err(|e| corrupt(store_dir, &e));
    let index = keyspace("index", INDEX_MEMTABLE_BYTES)?;
    let values = keyspace("values", VALUES_MEMTABLE_BYTES)?;
    let meta = keyspace("meta", 1 << 20)?;
    Ok(Handle { db, index, values, meta })
}

/// Mode of the data folder and of every folder under it: its owner reads, writes and enters it.
#[cfg(unix)]
const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file under the data folder: its owner reads and writes it.
#[cfg(unix)]
const PRIVATE_FILE_MODE: u32 = 0o600;

/// Options that create a file readable and writable by its owner only (the umask may only
/// remove more).
fn private_file() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE_MODE);
    options
}

/// Create `dir` and its missing parents as their owner's only (a folder that exists is left
/// as it is: [`make_private`] tightens it once it is known to be a chordnet folder).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR_MODE);
    builder.create(dir)
}

/// Make `dir` and everything under it the owner's only: folders 0700, files 0600. Links are
/// not followed (nor changed), and entries removed meanwhile (a table compacted away) skipped.
#[cfg(unix)]
fn make_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tighten = |path: &Path, mode: u32, current: u32| match current & 0o777 == mode {
        true => Ok(()),
        false => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
    };
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        match std::fs::symlink_metadata(&folder) {
            Ok(metadata) => tighten(&folder, PRIVATE_DIR_MODE, metadata.permissions().mode()).or_else(|e| if gone(&e) { Ok(()) } else { Err(e) })?,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        }
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(metadata) = std::fs::symlink_metadata(entry.path()) else { continue };
            if metadata.is_dir() {
                folders.push(entry.path());
            } else if metadata.is_file() {
                tighten(&entry.path(), PRIVATE_FILE_MODE, metadata.permissions().mode()).or_else(|e| if gone(&e) { Ok(()) } else { Err(e) })?;
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Take the folder's lock (a second node on the same folder is refused).
fn lock_folder(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let mut file = private_file().create(true).truncate(false).read(true).write(true).open(&path).map_err(|e| Error::io(e, &format!("cannot open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let pid = holder.trim();
            let by = if pid.is_empty() { String::new() } else { format!(" (process {pid})") };
            return Err(Error::StorageLocked(format!("{}: the data folder is in use by another running node{by}; give each node its own dataDir", dir.display())));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(e, &format!("cannot lock {}", path.display()))),
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

fn identity_checksum(body: &str) -> String {
    blake3::hash(body.as_bytes()).to_hex()[..32].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The identity file: a magic line, the protocol id, the identity record (hex), a checksum.
fn read_identity(path: &Path, protocol_id: Id) -> Result<Option<Vec<u8>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(e, &format!("cannot read {}", path.display()))),
    };
    let damaged = || {
        Error::StorageCorrupt(format!(
            "{}: damaged (it does not parse or its checksum is wrong): the node's identity is lost. Restore the file, or delete the folder {} to start afresh",
            path.display(),
            path.parent().map_or(String::new(), |p| p.display().to_string())
        ))
    };
    let lines: Vec<&str> = text.lines().collect();
    let [magic, protocol, identity, check] = lines[..] else { return Err(damaged()) };
    let body = format!("{magic}\n{protocol}\n{identity}\n");
    if magic != IDENTITY_MAGIC || check.strip_prefix("check ") != Some(identity_checksum(&body).as_str()) {
        return Err(damaged());
    }
    let theirs = protocol.strip_prefix("protocol ").ok_or_else(damaged)?;
    if theirs != protocol_id.to_hex() {
        return Err(Error::InvalidArgument(format!(
            "{}: this folder belongs to a node of another network (protocol id {theirs}, ours {}): give this node its own dataDir",
            path.display(),
            protocol_id.to_hex()
        )));
    }
    let record = identity.strip_prefix("identity ").and_then(unhex).ok_or_else(damaged)?;
    Ok(Some(record))
}

/// Written once, atomically: a temporary file, synced, renamed over, the folder synced.
fn write_identity(path: &Path, protocol_id: Id, identity: &[u8]) -> Result<()> {
    let body = format!("{IDENTITY_MAGIC}\nprotocol {}\nidentity {}\n", protocol_id.to_hex(), hex(identity));
    let text = format!("{body}check {}\n", identity_checksum(&body));
    let temporary = path.with_file_name("identity.tmp");
    let io = |e| Error::io(e, &format!("cannot write {}", path.display()));
    // It holds the node's secret key: readable by its owner only.
    let mut file = private_file().write(true).create(true).truncate(true).open(&temporary).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)?;
    if let Some(parent) = path.parent() {
        if let Ok(folder) = File::open(parent) {
            let _ = folder.sync_all();
        }
    }
    Ok(())
}

/// Write a count of commits at the start of the `committed` file, in place.
fn write_count(file: &File, commits: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_all_at(file, &commits.to_be_bytes(), 0);
    #[cfg(windows)]
    return std::os::windows::fs::FileExt::seek_write(file, &commits.to_be_bytes(), 0).map(|_| ());
}

/// The marker a store gets at creation: it belongs to this identity on this network.
fn marker(protocol_id: Id, identity: &[u8]) -> Vec<u8> {
    let mut out = MARKER_MAGIC.to_vec();
    out.extend_from_slice(&protocol_id.to_bytes());
    out.extend_from_slice(&blake3::hash(identity).as_bytes()[..16]);
    out
}

/// Where the data of each of the store's journals ends: fjall allocates a journal's file in
/// advance (zeros), so the end is the last byte that is not zero.
fn journal_sizes(store_dir: &Path) -> HashMap<PathBuf, u64> {
    let Ok(entries) = std::fs::read_dir(store_dir) else { return HashMap::new() };
    entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "jnl")).filter_map(|p| Some((p.clone(), data_end(&p)?))).collect()
}

fn data_end(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const CHUNK: u64 = 1 << 20;
    let mut file = File::open(path).ok()?;
    let mut end = file.metadata().ok()?.len();
    let mut buffer = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let part = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).ok()?;
        file.read_exact(part).ok()?;
        if let Some(last) = part.iter().rposition(|b| *b != 0) {
            return Some(start + last as u64 + 1);
        }
        end = start;
    }
    Some(0)
}

/// Recovery cuts a journal at its first bad record. A crash tears off at most the batch being
/// written (never acknowledged); a cut any longer means acknowledged writes were in a damaged
/// journal.
fn check_journals(before: &HashMap<PathBuf, u64>) -> Result<()> {
    let tolerance = (MAX_COMMIT_BYTES + MAX_ITEM_WIRE_BYTES) as u64 * 5 / 4 + (64 << 10);
    for (path, data) in before {
        let now = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            // Recovery found a sealed journal whose memtables were never flushed and flushed
            // them; fjall then deletes the journal, whose data now lives in tables.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => 0,
        };
        if now + tolerance < *data {
            return Err(Error::StorageCorrupt(format!(
                "{}: damaged: its records end at byte {now} but it held {data} bytes, so acknowledged writes were lost. {}",
                path.display(),
                resync_advice()
            )));
        }
    }
    Ok(())
}

/// Free bytes on the file system holding `path` (unix); `None` when unknown.
#[cfg(unix)]
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed out-parameter of the right type.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_bytes(_path: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("chordnet-disk-{name}-{}-{}", std::process::id(), rand::random::<u32>()));
            Scratch(dir)
        }

        fn config(&self, durability: Durability) -> StorageConfig {
            StorageConfig { dir: self.0.clone(), durability, resync: false }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const PROTOCOL: Id = Id(42);

    fn open(config: &StorageConfig) -> Result<Opened> {
        Disk::open(config, PROTOCOL, || vec![7; 33])
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    /// Write `count` values of `bytes` each, one commit per value (as acknowledged sets come).
    fn write_values(disk: &Arc<Disk>, count: usize, bytes: usize) {
        let mut values = DiskValues(disk.clone());
        for i in 0..count {
            let value = vec![(i % 251) as u8; bytes];
            values.put(Id::of_key(&key(i)), &key(i), &Version { millis: 1_000 + i as u64, counter: 0, writer: Id(1) }, Some(&value));
            let batch = disk.take_batch(Duration::ZERO);
            disk.commit(&batch).expect("committed");
        }
    }

    /// Wait until the values' memtable has been flushed to a table (fjall's background worker).
    fn wait_for_flush(disk: &Disk) {
        let handle = disk.handle().expect("open");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while handle.values.table_count() == 0 || handle.values.sealed_memtable_count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the values' memtable was never flushed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Values of 1 MiB that fill the values' memtable: the last one (with the keys and
    /// headers of all) takes it past its size, so fjall flushes it after the last commit.
    const PAST_MEMTABLE: usize = VALUES_MEMTABLE_BYTES as usize >> 20;

    #[test]
    fn a_store_reopens_after_a_flush_that_followed_its_last_commit() {
        let scratch = Scratch::new("flush-then-close");
        let config = scratch.config(Durability::Sync);
        let opened = open(&config).unwrap();
        write_values(&opened.disk, PAST_MEMTABLE, 1 << 20);
        // The flush lands after the last commit, then the node closes (or is destroyed).
        wait_for_flush(&opened.disk);
        opened.disk.close();
        opened.disk.release();
        drop(opened);
        let again = open(&config).unwrap_or_else(|e| panic!("reopening a store that lost nothing: {e}"));
        assert_eq!(again.index.len(), PAST_MEMTABLE);
        let values = DiskValues(again.disk.clone());
        for i in 0..PAST_MEMTABLE {
            assert_eq!(values.get(Id::of_key(&key(i)), &key(i)).unwrap()[..], vec![(i % 251) as u8; 1 << 20][..]);
        }
        again.disk.close();
        again.disk.release();
    }

    #[test]
    fn a_store_reopens_after_a_crash_that_followed_a_flush_and_a_sync() {
        // The `os` setting's once-a-second sync records what is durable; a flush between the
        // last commit and that sync, then a kill (the handles dropped, nothing released).
        let scratch = Scratch::new("flush-sync-crash");
        let config = scratch.config(Durability::Os);
        let opened = open(&config).unwrap();
        write_values(&opened.disk, PAST_MEMTABLE, 1 << 20);
        wait_for_flush(&opened.disk);
        opened.disk.sync().unwrap();
        let Opened { disk, .. } = opened;
        drop(Arc::into_inner(disk).expect("the only handle"));
        let again = open(&config).unwrap_or_else(|e| panic!("reopening a store that lost nothing: {e}"));
        assert_eq!(again.index.len(), PAST_MEMTABLE);
        again.disk.close();
        again.disk.release();
    }

    #[test]
    fn a_journal_cut_short_of_an_acknowledged_commit_is_refused() {
        let scratch = Scratch::new("cut-journal");
        let config = scratch.config(Durability::Sync);
        let opened = open(&config).unwrap();
        write_values(&opened.disk, 5, 100);
        // A kill, then the journal loses the end of its last batch (a damaged disk).
        let Opened { disk, .. } = opened;
        drop(Arc::into_inner(disk).expect("the only handle"));
        let journals = journal_sizes(&scratch.0.join("store"));
        assert_eq!(journals.len(), 1, "one journal: {journals:?}");
        let (journal, end) = journals.into_iter().next().unwrap();
        OpenOptions::new().write(true).open(&journal).unwrap().set_len(end - 8).unwrap();
        let refused = open(&config).err().expect("a store that lost an acknowledged commit is refused");
        assert_eq!(refused.code(), "ERR_STORAGE_CORRUPT");
        assert!(refused.to_string().contains("holds 4 commits but had made 5 durable"), "{refused}");
    }

    #[test]
    fn a_store_from_before_the_commit_count_opens_and_starts_counting() {
        // Such a store has no `commits` record and its `committed` file holds fjall's sequence
        // number instead, which says nothing about the count.
        let scratch = Scratch::new("legacy");
        let config = scratch.config(Durability::Sync);
        let opened = open(&config).unwrap();
        write_values(&opened.disk, 3, 100);
        opened.disk.handle().unwrap().meta.remove(COMMITS).unwrap();
        opened.disk.close();
        opened.disk.release();
        drop(opened);
        std::fs::write(scratch.0.join("committed"), 999u64.to_be_bytes()).unwrap();
        let again = open(&config).unwrap_or_else(|e| panic!("an older store opens: {e}"));
        assert_eq!(again.index.len(), 3);
        write_values(&again.disk, 1, 100);
        again.disk.close();
        again.disk.release();
        drop(again);
        assert_eq!(std::fs::read(scratch.0.join("committed")).unwrap(), 1u64.to_be_bytes());
        open(&config).unwrap().disk.release();
    }

    /// Paths under `dir` (itself included) that group or others may use, with their modes.
    #[cfg(unix)]
    fn loose_under(dir: &Path) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut loose = Vec::new();
        let mut paths = vec![dir.to_path_buf()];
        while let Some(path) = paths.pop() {
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.permissions().mode() & 0o077 != 0 {
                loose.push(format!("{} {:o}", path.display(), metadata.permissions().mode() & 0o777));
            }
            if metadata.is_dir() {
                paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
        loose
    }

    #[cfg(unix)]
    #[test]
    fn the_data_folder_and_everything_in_it_is_its_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("private");
        let config = scratch.config(Durability::Sync);
        let opened = open(&config).unwrap();
        assert_eq!(loose_under(&scratch.0), Vec::<String>::new(), "a new folder");
        // A folder of an older build, or made by hand: open to everyone.
        opened.disk.close();
        opened.disk.release();
        drop(opened);
        std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(scratch.0.join("committed"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let opened = open(&config).unwrap();
        assert_eq!(loose_under(&scratch.0), Vec::<String>::new(), "after open");
        // fjall creates tables and journals as it goes, with the umask's mode.
        write_values(&opened.disk, PAST_MEMTABLE, 1 << 20);
        wait_for_flush(&opened.disk);
        opened.disk.remember_members(&[]).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&scratch.0), 0o700, "meanwhile the folder keeps everyone else out");
        opened.disk.close();
        opened.disk.release();
        assert_eq!(loose_under(&scratch.0), Vec::<String>::new(), "after close");
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_that_is_not_a_nodes_keeps_its_modes() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("foreign");
        std::fs::create_dir_all(&scratch.0).unwrap();
        std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(scratch.0.join("notes.txt"), "mine").unwrap();
        std::fs::set_permissions(scratch.0.join("notes.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = open(&scratch.config(Durability::Sync)).err().expect("refused");
        assert_eq!(refused.code(), "ERR_INVALID_ARGUMENT");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&scratch.0), mode(&scratch.0.join("notes.txt"))), (0o755, 0o644));
    }
}
