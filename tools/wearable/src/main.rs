//! A wearable simulator: starts a session (`auth.start_session`), keeps it encrypted at rest,
//! refreshes it instead of asking for the password again, and syncs batches of samples through
//! `health.ingest`, printing what happened to each batch.
//!
//!   cargo run -p health-rls-wearable -- --dsn '<libpq dsn>' --email ada@example.com --password '…' \
//!       [--sign-up] [--refresh] [--table public.health_metrics] [--batches 3] [--batch-size 20] [--state-dir DIR]
//!
//! The session file (access token AND refresh token) is sealed with ChaCha20-Poly1305; the key
//! lives in a separate 0600 file, so a copied session file alone is useless. A sealed access token
//! is reused until it is about to expire; then (or with --refresh) the refresh token buys a new
//! pair — refresh tokens are single-use, so the new one is sealed at once.
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::NoTls;

struct Args {
    dsn: String,
    email: String,
    password: String,
    sign_up: bool,
    refresh: bool,
    table: String,
    batches: usize,
    batch_size: usize,
    state_dir: PathBuf,
    device: String,
}

fn parse_args() -> Args {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut flags = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sign-up" | "--refresh" => flags.push(a),
            _ if a.starts_with("--") => {
                m.insert(a.trim_start_matches("--").to_string(), it.next().unwrap_or_default());
            }
            _ => {}
        }
    }
    let get = |k: &str, d: &str| m.get(k).cloned().unwrap_or_else(|| d.to_string());
    Args {
        dsn: m.get("dsn").cloned().or_else(|| std::env::var("DATABASE_URL").ok()).expect("--dsn or DATABASE_URL"),
        email: m.get("email").cloned().expect("--email"),
        password: m.get("password").cloned().expect("--password"),
        sign_up: flags.iter().any(|f| f == "--sign-up"),
        refresh: flags.iter().any(|f| f == "--refresh"),
        table: get("table", "public.health_metrics"),
        batches: get("batches", "3").parse().expect("--batches"),
        batch_size: get("batch-size", "20").parse().expect("--batch-size"),
        state_dir: PathBuf::from(get("state-dir", ".wearable")),
        device: get("device", "demo-watch"),
    }
}

/// The 32-byte sealing key, created 0600 on first use.
fn sealing_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("token.key");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(k) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(k);
        }
    }
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).expect("OS randomness");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    std::io::Write::write_all(&mut f, &k)?;
    Ok(k)
}

fn seal(dir: &Path, token: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let cipher = ChaCha20Poly1305::new(&Key::from(sealing_key(dir)?));
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce).expect("OS randomness");
    let mut out = nonce.to_vec();
    out.extend(cipher.encrypt(&Nonce::from(nonce), token.as_bytes()).expect("encrypt"));
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join("token.enc"))?;
    std::io::Write::write_all(&mut f, &out)
}

fn unseal(dir: &Path) -> Option<String> {
    let sealed = std::fs::read(dir.join("token.enc")).ok()?;
    if sealed.len() < 12 {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(&Key::from(sealing_key(dir).ok()?));
    let nonce: [u8; 12] = sealed[..12].try_into().ok()?;
    let plain = cipher.decrypt(&Nonce::from(nonce), &sealed[12..]).ok()?;
    String::from_utf8(plain).ok()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Seconds until the token expires (read without verifying: the database verifies).
fn expires_in(token: &str) -> i64 {
    use base64::Engine;
    let exp = token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["exp"].as_i64())
        .unwrap_or(0);
    exp - now()
}

/// Deterministic pseudo-random numbers (no extra dependency; the simulator needs no crypto here).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

fn batch(rng: &mut Lcg, size: usize, start: i64, device: &str, with_glitch: bool) -> serde_json::Value {
    let mut samples = Vec::new();
    for i in 0..size {
        let at = chrono_like(start + i as i64 * 60);
        let (kind, value, unit) = match i % 3 {
            0 => ("heart_rate", rng.next(55.0, 95.0).round(), "/min"),
            1 => ("steps", rng.next(0.0, 120.0).round(), "{steps}"),
            _ => ("oxygen_saturation", (rng.next(95.0, 99.5) * 10.0).round() / 10.0, "%"),
        };
        samples
            .push(serde_json::json!({"kind": kind, "value": value, "unit": unit, "recorded_at": at, "source": device}));
    }
    if with_glitch {
        // What real devices send now and then: a sensor glitch and a re-sent sample.
        samples.push(serde_json::json!({"kind": "heart_rate", "value": 400, "unit": "/min", "recorded_at": chrono_like(start), "source": device}));
        samples.push(samples[0].clone());
    }
    serde_json::Value::Array(samples)
}

/// RFC 3339 UTC timestamp for a Unix time, without a date-time dependency.
fn chrono_like(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    std::fs::create_dir_all(&args.state_dir).expect("state dir");
    let (db, conn) = tokio_postgres::connect(&args.dsn, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let who = args.email.split('@').next().unwrap_or("device").to_string();

    let sealed: Option<serde_json::Value> = unseal(&args.state_dir).and_then(|s| serde_json::from_str(&s).ok());
    let access_of = |s: &serde_json::Value| s["access_token"].as_str().unwrap_or_default().to_string();
    let mut session = None;
    if let Some(s) = sealed {
        let left = expires_in(&access_of(&s));
        if left > 60 && !args.refresh {
            println!("[{who}] reusing the sealed access token ({} min left)", left / 60);
            session = Some(s);
        } else if let Some(refresh) = s["refresh_token"].as_str() {
            match db.query_one("SELECT auth.refresh_session($1)", &[&refresh]).await {
                Ok(row) => {
                    let fresh: serde_json::Value = row.get(0);
                    seal(&args.state_dir, &fresh.to_string()).expect("seal session");
                    println!("[{who}] refreshed the session without the password (single-use refresh token rotated and sealed)");
                    session = Some(fresh);
                }
                Err(e) => println!(
                    "[{who}] refresh refused ({}): signing in again",
                    e.as_db_error().map(|d| d.message()).unwrap_or("error")
                ),
            }
        }
    }
    let session = match session {
        Some(s) => s,
        None => {
            if args.sign_up {
                db.query_one("SELECT auth.sign_up($1, $2)", &[&args.email, &args.password]).await.expect("sign_up");
            }
            let s: serde_json::Value = match db
                .query_one("SELECT auth.start_session($1, $2)", &[&args.email, &args.password])
                .await
            {
                Ok(row) => row.get(0),
                Err(e) => {
                    eprintln!("[{who}] sign-in refused: {}", e.as_db_error().map(|d| d.message()).unwrap_or("error"));
                    std::process::exit(1);
                }
            };
            seal(&args.state_dir, &s.to_string()).expect("seal session");
            println!("[{who}] signed in; session sealed in {}", args.state_dir.join("token.enc").display());
            s
        }
    };
    let token = access_of(&session);

    let mut rng = Lcg(args.email.bytes().fold(7, |a, b| a.wrapping_mul(31).wrapping_add(b as u64)));
    let start = now() - (args.batches * args.batch_size * 60) as i64;
    for b in 0..args.batches {
        let samples = batch(&mut rng, args.batch_size, start + (b * args.batch_size * 60) as i64, &args.device, b == 0);
        let sent = samples.as_array().map(Vec::len).unwrap_or(0);
        db.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.expect("begin");
        db.query_one("SELECT auth.authenticate($1)", &[&token]).await.expect("authenticate");
        let rows = db
            .query(
                "SELECT status, error FROM health.ingest($1::text::regclass, $2::jsonb) ORDER BY ord",
                &[&args.table, &samples],
            )
            .await
            .expect("ingest");
        db.batch_execute("COMMIT").await.expect("commit");
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut reasons = Vec::new();
        for r in &rows {
            let status: String = r.get(0);
            if status == "rejected" {
                reasons.push(r.get::<_, Option<String>>(1).unwrap_or_default());
            }
            *counts.entry(status).or_default() += 1;
        }
        println!(
            "[{who}] batch {}: sent {sent}, inserted {}, duplicate {}, rejected {}{}",
            b + 1,
            counts.get("inserted").unwrap_or(&0),
            counts.get("duplicate").unwrap_or(&0),
            counts.get("rejected").unwrap_or(&0),
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join("; ")) }
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
