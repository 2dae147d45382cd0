//! `chord-sim`: command-line front end of the deterministic simulator of the chordnet engine
//! (see the library docs). Parses flags, runs the studies, prints each table, writes
//! `sim-<study>.md` and `sim-<study>.svg`, and exits non-zero when a run broke an invariant
//! (printing the command that replays it).

use chord_sim::studies::{self, Params, STUDIES};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
Deterministic simulator: the chordnet engine's own machines over an in-memory network.

Usage: chord-sim <study> [options]        (npm run sim -- <study> [options])

Studies:
  hops       lookup hops, finger/successor sizes and maintenance messages on stable rings
             (default rings of 1,000, 10,000 and 100,000 nodes)
  failures   10/25/50% of the nodes fail at once, successor lists r = 3, 8, log2 N
             (default 10,000 nodes)
  churn      Poisson joins and failures, failed lookups and invariants per period
             (default 1,000 nodes, 200 periods, rates 0.5/1/2/5% per period)
  faults     partitions, 5% message loss, 20% crashes with restarts, ±2 s clock skew, with
             a write workload; ring and data invariants after every round
             (default 1,000 nodes, 3 seeds per scenario)
  restarts   members restarted on their folders while writes go on: stale reads
  scale      rings far larger than a connection table: joins through one node, hops,
             connections and idle cost with maxPeers 64 and 16 (default 10,000, 100,000)
  onehop     gets straight to their owner from gossiped member tables: convergence,
             membership bytes, hops with a mesh-sized and the default connection limit
             (default 1,000 nodes)
  events     messages per write with 0, 1 and 100 nodes listening for every key
             (default 1,000 and 10,000 nodes)
  load       owned keys per node by ring positions per node (virtual nodes, ring math
             only; 16, 64, 1,000 and 10,000 nodes)
  all        every study above

Options:
  --nodes N[,N...]   ring sizes for hops; the first one is the size for failures and churn
  --seed S           RNG seed (default 1); a run is a pure function of its seed
  --out DIR          where to write sim-<study>.md and .svg (default bench/results)
  --lookups L        lookups per measurement (default 20000; churn does L/20 per period)
  --keys K           keys sampled for the key-loss count (default 100000)
  --periods P        churn: stabilization periods (default 200)
  --rate F           churn: share of nodes changing per period, e.g. 0.01 (default: sweep)
  --succ R           successor-list length for hops and churn (default 4, the node's default)
  --max-rounds M     failures: stabilization rounds before giving up (default 100)
  --seeds K          faults: seeds per scenario, from --seed up (default 3)
  --scenario NAME    faults: run one scenario (partition-2, loss-5pct, crash-20pct, skew-2s)
  --max-peers L[,L]  scale, onehop: connection limits to run (default 64,16; onehop 2N and
                     the default)
  --quick            smaller defaults: hops 1,000+10,000, failures 1,000, churn 500 x 50,
                     faults 300 nodes
  -h, --help         this text

Environment: SIM_DEBUG=1 makes `faults` print each run's network counters and every member
whose successor is not the next live member.
";

struct Cli {
    studies: Vec<String>,
    params: Params,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Option<Cli>, String> {
    let mut params = Params::default();
    let mut out = PathBuf::from("bench/results");
    let mut study = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--nodes" => params.nodes = Some(value()?.split(',').map(number).collect::<Result<_, _>>()?),
            "--seed" => params.seed = number(&value()?)? as u64,
            "--out" => out = PathBuf::from(value()?),
            "--lookups" => params.lookups = number(&value()?)?,
            "--keys" => params.keys = number(&value()?)?,
            "--periods" => params.periods = number(&value()?)?,
            "--rate" => params.rate = Some(value()?.parse().map_err(|_| "--rate needs a number like 0.01")?),
            "--succ" => params.successor_list_len = number(&value()?)?,
            "--max-rounds" => params.max_rounds = number(&value()?)?,
            "--seeds" => params.seeds = number(&value()?)?.max(1),
            "--scenario" => params.scenario = Some(value()?),
            "--max-peers" => params.max_peers = Some(value()?.split(',').map(number).collect::<Result<_, _>>()?),
            "--quick" => params.quick = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            name if study.is_none() => study = Some(name.to_string()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    let study = study.ok_or("which study? hops, failures, churn, faults or all")?;
    let studies = match study.as_str() {
        "all" => STUDIES.iter().map(|s| s.to_string()).collect(),
        name if STUDIES.contains(&name) => vec![study],
        other => return Err(format!("unknown study {other}")),
    };
    Ok(Some(Cli { studies, params, out }))
}

fn number(text: &str) -> Result<usize, String> {
    text.replace('_', "").parse().map_err(|_| format!("not a number: {text}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse(&args) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("chord-sim: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = std::fs::create_dir_all(&cli.out) {
        eprintln!("chord-sim: cannot create {}: {error}", cli.out.display());
        return ExitCode::FAILURE;
    }
    let mut failed = Vec::new();
    for study in &cli.studies {
        let started = Instant::now();
        let output = studies::run(study, &cli.params).expect("known study");
        failed.extend(output.failed.iter().cloned());
        println!("{}", output.markdown);
        println!("({study}: {:.1} s)\n", started.elapsed().as_secs_f64());
        for (ext, text) in [("md", &output.markdown), ("svg", &output.svg)] {
            let path = cli.out.join(format!("sim-{}.{ext}", output.study));
            if let Err(error) = std::fs::write(&path, text) {
                eprintln!("chord-sim: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("chord-sim: {} run(s) broke an invariant:", failed.len());
        for line in &failed {
            eprintln!("  {line}");
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
