//! Imports an Apple Health `export.xml` into a health_rls metrics table through `health.ingest`.
//!
//!   cargo run --release -p health-rls-import-apple-health -- [--dsn DSN] [--table health_metrics] \
//!       [--batch 1000] [--json-summary PATH] (--token JWT | --email E --password P) FILE
//!
//! The DSN defaults to `$HEALTH_RLS_DSN`, else `host=127.0.0.1 user=postgres dbname=postgres`; the
//! login role must be a member of `authenticated`. The file is streamed twice (memory stays bounded
//! whatever its size): pass 1 checks that it is well-formed and remembers the children of
//! blood-pressure correlations, pass 2 sends every record of a type the database supports
//! (`health.metric_kinds.healthkit`) as the platform wrote it, one transaction per batch. Apple
//! repeats correlation children at top level: those repeats are counted as "part of a
//! correlation" and not sent again.
//!
//! Exit codes: 0 done; 1 database, connection or authentication failure; 2 bad arguments, an
//! unreadable or not well-formed file (nothing is sent then).
mod element;
mod pipeline;
mod report;
mod xml;

#[cfg(test)]
mod realdata_tests;

use element::{Classifier, CorrelationKeys};
use pipeline::{scan_correlations, Batch, Batcher};
use std::collections::HashSet;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

const USAGE: &str = "usage: health-rls-import-apple-health [--dsn DSN] [--table health_metrics] [--batch 1000] \
[--json-summary PATH] (--token JWT | --email E --password P) FILE";
const DEFAULT_DSN: &str = "host=127.0.0.1 user=postgres dbname=postgres";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Token(String),
    Password { email: String, password: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub dsn: String,
    pub table: String,
    pub batch: usize,
    pub auth: Auth,
    pub json_summary: Option<PathBuf>,
    pub file: PathBuf,
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

fn usage(msg: impl std::fmt::Display) -> Failure {
    Failure { code: 2, message: format!("{msg}\n{USAGE}") }
}

fn db_failure(msg: impl std::fmt::Display) -> Failure {
    Failure { code: 1, message: msg.to_string() }
}

/// Command-line arguments (without the program name); `env_dsn` is `$HEALTH_RLS_DSN`.
pub fn parse_args(args: &[String], env_dsn: Option<String>) -> Result<Args, Failure> {
    let mut dsn = None;
    let mut table = None;
    let mut batch = None;
    let mut token = None;
    let mut email = None;
    let mut password = None;
    let mut json_summary = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    let mut only_files = false;
    while let Some(a) = it.next() {
        if only_files || !a.starts_with("--") || a == "-" {
            files.push(PathBuf::from(a));
            continue;
        }
        if a == "--" {
            only_files = true;
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let slot = match name {
            "--dsn" => &mut dsn,
            "--table" => &mut table,
            "--batch" => &mut batch,
            "--token" => &mut token,
            "--email" => &mut email,
            "--password" => &mut password,
            "--json-summary" => &mut json_summary,
            "--help" => return Err(Failure { code: 2, message: USAGE.to_string() }),
            _ => return Err(usage(format!("unknown option {name}"))),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or_else(|| usage(format!("{name} needs a value")))?,
        };
        *slot = Some(value);
    }
    let file = match files.len() {
        1 => files.remove(0),
        0 => return Err(usage("no export file given")),
        _ => return Err(usage("give exactly one export file")),
    };
    let batch = match batch {
        None => 1000,
        Some(b) => b
            .parse::<usize>()
            .ok()
            .filter(|&b| (1..=100_000).contains(&b))
            .ok_or_else(|| usage(format!("--batch must be a whole number from 1 to 100000, not {b:?}")))?,
    };
    let auth = match (token, email, password) {
        (Some(t), None, None) if !t.is_empty() => Auth::Token(t),
        (None, Some(email), Some(password)) => Auth::Password { email, password },
        (Some(_), _, _) => return Err(usage("give either --token or --email and --password, not both")),
        (None, Some(_), None) => return Err(usage("--email needs --password")),
        (None, None, Some(_)) => return Err(usage("--password needs --email")),
        (None, None, None) => return Err(usage("give --token JWT, or --email E --password P")),
    };
    Ok(Args {
        dsn: dsn.or(env_dsn).filter(|d| !d.is_empty()).unwrap_or_else(|| DEFAULT_DSN.to_string()),
        table: table.unwrap_or_else(|| "health_metrics".to_string()),
        batch,
        auth,
        json_summary: json_summary.map(PathBuf::from),
        file,
    })
}

/// "12.3 MB of 100.0 MB (12 %), 45000 records, 23000 records/s"
pub fn progress_line(label: &str, bytes: u64, total: u64, items: u64, secs: f64) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let pct = if total > 0 { (bytes as f64 * 100.0 / total as f64).min(100.0) } else { 100.0 };
    let rate = if secs > 0.0 { items as f64 / secs } else { 0.0 };
    format!("{label}: {:.1} MB of {:.1} MB ({pct:.0} %), {items} records, {rate:.0} records/s", mb(bytes), mb(total))
}

/// The progress line on stderr: rewritten in place on a terminal, else a line every 10 s.
struct Progress {
    label: &'static str,
    total: u64,
    start: Instant,
    last: Instant,
    tty: bool,
    shown: bool,
}

impl Progress {
    fn new(label: &'static str, total: u64) -> Self {
        let now = Instant::now();
        Progress { label, total, start: now, last: now, tty: std::io::stderr().is_terminal(), shown: false }
    }

    fn update(&mut self, bytes: u64, items: u64) {
        let every = if self.tty { Duration::from_millis(250) } else { Duration::from_secs(10) };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        self.show(bytes, items);
    }

    fn show(&mut self, bytes: u64, items: u64) {
        let line = progress_line(self.label, bytes, self.total, items, self.start.elapsed().as_secs_f64());
        let mut err = std::io::stderr().lock();
        let _ = if self.tty { write!(err, "\r{line}\x1b[K") } else { writeln!(err, "{line}") };
        let _ = err.flush();
        self.shown = true;
    }

    fn finish(&mut self, bytes: u64, items: u64) {
        if self.tty {
            self.show(bytes, items);
            eprintln!();
        } else if self.shown {
            self.show(bytes, items);
        }
    }
}

fn open(path: &Path) -> Result<(BufReader<std::fs::File>, u64), Failure> {
    let f = std::fs::File::open(path)
        .map_err(|e| Failure { code: 2, message: format!("cannot open {}: {e}", path.display()) })?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(256 * 1024, f);
    let head = std::io::BufRead::fill_buf(&mut reader)
        .map_err(|e| Failure { code: 2, message: format!("cannot read {}: {e}", path.display()) })?;
    if head.starts_with(b"PK\x03\x04") {
        return Err(Failure {
            code: 2,
            message: format!(
                "{} is a zip archive: unzip it and give the export.xml inside (apple_health_export/export.xml)",
                path.display()
            ),
        });
    }
    Ok((reader, len))
}

/// "FILE:LINE:COLUMN: not well-formed XML: WHAT (NOTE)"
fn xml_failure(path: &Path, e: &xml::XmlError, note: &str) -> Failure {
    let at = std::fs::File::open(path)
        .and_then(|f| xml::line_col(BufReader::new(f), e.offset))
        .map(|(l, c)| format!("{l}:{c}"))
        .unwrap_or_else(|_| format!("byte {}", e.offset));
    Failure { code: 2, message: format!("{}:{at}: not well-formed XML: {} ({note})", path.display(), e.message) }
}

/// The message of a database error (the server's text when there is one; never the token).
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            if let Some(src) = std::error::Error::source(e) {
                let src = src.to_string();
                if !s.contains(&src) {
                    s = format!("{s}: {src}");
                }
            }
            s
        }
    }
}

async fn connect(dsn: &str) -> Result<Client, Failure> {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(|e| db_failure(format!("cannot connect to the database: {}", pg_message(&e))))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("health-rls-import-apple-health: database connection lost: {}", pg_message(&e));
        }
    });
    Ok(client)
}

async fn sign_in(db: &Client, email: &str, password: &str) -> Result<String, Failure> {
    let row = db
        .query_one("SELECT auth.sign_in($1, $2)", &[&email, &password])
        .await
        .map_err(|e| db_failure(format!("sign-in failed: {}", pg_message(&e))))?;
    row.try_get::<_, String>(0).map_err(|e| db_failure(format!("sign-in failed: {}", pg_message(&e))))
}

#[derive(Debug)]
enum BatchError {
    /// `auth.authenticate` refused the token (expired, revoked…).
    Auth(String),
    Other(String),
}

/// One transaction: BEGIN; SET LOCAL ROLE authenticated; auth.authenticate; health.ingest; COMMIT.
async fn ingest(
    db: &mut Client,
    token: &str,
    table: &str,
    elements: Option<&serde_json::Value>,
) -> Result<Vec<(i32, String, Option<String>)>, BatchError> {
    let other = |what: &str, e: tokio_postgres::Error| BatchError::Other(format!("{what}: {}", pg_message(&e)));
    let tx = db.transaction().await.map_err(|e| other("BEGIN", e))?;
    tx.batch_execute("SET LOCAL ROLE authenticated").await.map_err(|e| other("SET LOCAL ROLE authenticated", e))?;
    tx.execute("SELECT auth.authenticate($1)", &[&token]).await.map_err(|e| match e.as_db_error() {
        Some(_) => BatchError::Auth(format!("the token was refused: {}", pg_message(&e))),
        None => other("auth.authenticate", e),
    })?;
    let Some(elements) = elements else {
        // Only checking the token and the table.
        tx.execute("SELECT $1::text::regclass", &[&table]).await.map_err(|e| other("--table", e))?;
        tx.rollback().await.map_err(|e| other("ROLLBACK", e))?;
        return Ok(Vec::new());
    };
    let rows = tx
        .query("SELECT ord, status, id, error FROM health.ingest($1::text::regclass, $2::jsonb)", &[&table, elements])
        .await
        .map_err(|e| other("health.ingest", e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let ord: i32 = r.try_get(0).map_err(|e| other("health.ingest result (ord)", e))?;
        let status: String = r.try_get(1).map_err(|e| other("health.ingest result (status)", e))?;
        let error: Option<String> = r.try_get(3).map_err(|e| other("health.ingest result (error)", e))?;
        out.push((ord, status, error));
    }
    tx.commit().await.map_err(|e| other("COMMIT", e))?;
    Ok(out)
}

async fn supported_types(db: &Client) -> Result<HashSet<String>, Failure> {
    let rows = db
        .query("SELECT healthkit FROM health.metric_kinds WHERE healthkit IS NOT NULL", &[])
        .await
        .map_err(|e| db_failure(format!("cannot read health.metric_kinds: {}", pg_message(&e))))?;
    rows.iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(|e| db_failure(format!("cannot read health.metric_kinds: {}", pg_message(&e))))
}

/// `--json-summary PATH`, if given.
fn write_summary(args: &Args, report: &report::Report, file: &str, started: Instant) -> Result<(), Failure> {
    let Some(path) = &args.json_summary else { return Ok(()) };
    let summary = report.to_json(file, started.elapsed().as_secs_f64());
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    std::fs::write(path, text + "\n")
        .map_err(|e| Failure { code: 2, message: format!("cannot write {}: {e}", path.display()) })
}

async fn run(args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let file = args.file.display().to_string();

    // Pass 1 (no database needed): well-formed? which records are correlation children?
    let (input, total) = open(&args.file)?;
    let mut progress = Progress::new("checking", total);
    let mut read = (0, 0);
    let keys: CorrelationKeys = scan_correlations(input, |pos, n| {
        read = (pos, n);
        progress.update(pos, n)
    })
    .map_err(|e| xml_failure(&args.file, &e, "nothing was imported"))?;
    progress.finish(read.0, read.1);

    let mut db = connect(&args.dsn).await?;
    let mut token = match &args.auth {
        Auth::Token(t) => t.clone(),
        Auth::Password { email, password } => sign_in(&db, email, password).await?,
    };
    match ingest(&mut db, &token, &args.table, None).await {
        Ok(_) => {}
        Err(BatchError::Auth(m)) => return Err(db_failure(format!("authentication failed: {m}"))),
        Err(BatchError::Other(m)) => return Err(db_failure(m)),
    }
    let supported = supported_types(&db).await?;

    // Pass 2.
    let (input, _) = open(&args.file)?;
    let classifier = Classifier { supported: &supported, correlations: &keys };
    let mut batcher = Batcher::new(input, classifier, args.batch);
    let mut progress = Progress::new("importing", total);
    loop {
        let mut batch: Batch = match batcher.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                let note =
                    format!("the file changed while importing; {} batches are committed", batcher.report.batches);
                return Err(xml_failure(&args.file, &e, &note));
            }
        };
        let elements = batch.take_json();
        let mut answer = ingest(&mut db, &token, &args.table, Some(&elements)).await;
        if let (Err(BatchError::Auth(_)), Auth::Password { email, password }) = (&answer, &args.auth) {
            // A long import can outlive the token: sign in again once.
            token = sign_in(&db, email, password).await?;
            answer = ingest(&mut db, &token, &args.table, Some(&elements)).await;
        }
        match answer {
            Ok(rows) => batcher.apply(&batch, &rows),
            Err(BatchError::Auth(m) | BatchError::Other(m)) => {
                progress.finish(batcher.position(), batcher.items);
                print!("{}", batcher.report.render());
                write_summary(&args, &batcher.report, &file, started)?;
                let done = match batcher.report.batches {
                    0 => "nothing was committed".to_string(),
                    n => format!("the {n} batches before it are committed"),
                };
                return Err(db_failure(format!("batch {} failed, stopping ({done}): {m}", batcher.report.batches + 1)));
            }
        }
        progress.update(batcher.position(), batcher.items);
    }
    progress.finish(batcher.position(), batcher.items);

    let report = &batcher.report;
    println!("{file}");
    print!("{}", report.render());
    println!("time: {:.1} s", started.elapsed().as_secs_f64());
    write_summary(&args, report, &file, started)?;
    if !report.unbalanced().is_empty() {
        return Err(db_failure(
            "the counts do not add up (see the check above): health.ingest did not answer for every element",
        ));
    }
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&argv, std::env::var("HEALTH_RLS_DSN").ok()).and_then(|args| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| db_failure(format!("cannot start the runtime: {e}")))?
            .block_on(run(args))
    });
    if let Err(f) = result {
        let _ = std::io::stdout().flush();
        eprintln!("health-rls-import-apple-health: {}", f.message);
        std::process::exit(f.code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args, Failure> {
        parse_args(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>(), None)
    }

    #[test]
    fn defaults_and_token() {
        let a = args(&["--token", "T", "export.xml"]).unwrap();
        assert_eq!(
            a,
            Args {
                dsn: DEFAULT_DSN.into(),
                table: "health_metrics".into(),
                batch: 1000,
                auth: Auth::Token("T".into()),
                json_summary: None,
                file: "export.xml".into(),
            }
        );
        let env = parse_args(&["--token".into(), "T".into(), "f".into()], Some("host=/tmp".into())).unwrap();
        assert_eq!(env.dsn, "host=/tmp");
    }

    #[test]
    fn all_options() {
        let a = args(&[
            "--dsn=host=db user=x",
            "--table",
            "public.m",
            "--batch",
            "50",
            "--email",
            "a@b",
            "--password",
            "--secret",
            "--json-summary",
            "s.json",
            "--",
            "--odd-name.xml",
        ])
        .unwrap();
        assert_eq!(a.dsn, "host=db user=x");
        assert_eq!(a.table, "public.m");
        assert_eq!(a.batch, 50);
        assert_eq!(a.auth, Auth::Password { email: "a@b".into(), password: "--secret".into() });
        assert_eq!(a.json_summary, Some(PathBuf::from("s.json")));
        assert_eq!(a.file, PathBuf::from("--odd-name.xml"));
    }

    #[test]
    fn bad_arguments_exit_2_without_echoing_secrets() {
        for bad in [
            &["f"][..],
            &["--token", "T"],
            &["--token", "T", "a", "b"],
            &["--token", "T", "--email", "e", "--password", "pw-123", "f"],
            &["--email", "e", "f"],
            &["--password", "pw-123", "f"],
            &["--token", "T", "--batch", "0", "f"],
            &["--token", "T", "--batch", "x", "f"],
            &["--token", "T", "--frobnicate", "1", "f"],
            &["--token"],
        ] {
            let f = args(bad).unwrap_err();
            assert_eq!(f.code, 2, "{bad:?}");
            assert!(!f.message.contains("pw-123"), "{}", f.message);
        }
    }

    #[test]
    fn progress_text() {
        assert_eq!(
            progress_line("importing", 12_345_678, 100_000_000, 45_000, 2.0),
            "importing: 12.3 MB of 100.0 MB (12 %), 45000 records, 22500 records/s"
        );
        assert_eq!(
            progress_line("checking", 0, 0, 0, 0.0),
            "checking: 0.0 MB of 0.0 MB (100 %), 0 records, 0 records/s"
        );
    }

    #[test]
    fn xml_failure_names_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("import_apple_health_test_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.xml");
        std::fs::write(&path, "<HealthData>\n <Record type=\"T\" Bad Name=\"1\"/>\n</HealthData>\n").unwrap();
        let err = scan_correlations(open(&path).unwrap().0, |_, _| {}).unwrap_err();
        let f = xml_failure(&path, &err, "nothing was imported");
        assert_eq!(f.code, 2);
        assert!(f.message.starts_with(&format!("{}:2:", path.display())), "{}", f.message);
        assert!(f.message.contains("not well-formed XML"), "{}", f.message);
        assert!(!f.message.contains('\n'), "one line: {}", f.message);
        let zip = dir.join("export.zip");
        std::fs::write(&zip, b"PK\x03\x04\x14\x00rest").unwrap();
        let f = open(&zip).unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.message.contains("is a zip archive"), "{}", f.message);
        let f = open(&dir.join("absent.xml")).unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.message.starts_with("cannot open "), "{}", f.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
