//! The dashboard in a real browser: Debian's `chromium`, headless, driven through `chromedriver`
//! (WebDriver). Two people sign up in two browser sessions; a wearable writes for one of them;
//! the point appears on that person's chart within 2 s and never on the other's; it is still
//! there after a reload; a sample written while the network is cut arrives after it comes back
//! (the change feed's catch-up); sharing by email works from the page (an invitation to an
//! address with an account and one without, answered alike; accepted in the other session, read,
//! revoked), and so does the access log;
//! signing out ends the stream at the gateway, and a session ended elsewhere shows in words.
//! A third person with a year of data reads the trends card: each view draws exactly the buckets
//! health.summary returns for the same range and zone, with the values rounded as SQL rounds
//! them, in bpm / °C / °F, never a UCUM code.
//! Everything is checked in the DOM (data attributes, text), not in pixels; screenshots of the
//! pages are saved under target/dashboard-screenshots/.
mod common;

use health_rls_gateway::{gateway, relay};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TABLE: &str = "public.dash_metrics";

/// The browsers' time zone: not UTC (the test's own), with clock changes, so a page that cut days
/// in another zone than the one it asks the summary for would show it.
const BROWSER_TZ: &str = "America/New_York";

/// chromedriver on a free port (killed when dropped).
struct Driver {
    _child: tokio::process::Child,
    url: String,
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("TZ", BROWSER_TZ)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver not found: install Debian's chromium and chromium-driver (scripts/setup does)");
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { _child: child, url: format!("http://127.0.0.1:{port}") }
}

/// A new browser session: its own profile, so its own cookies. Root needs --no-sandbox.
async fn browser(driver: &Driver) -> Client {
    browser_in(driver, "en-US").await
}

/// `browser` with another language (en-US pages default to US units, en-GB to metric).
async fn browser_in(driver: &Driver, lang: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1200,1250", format!("--lang={lang}")],
               "prefs": {"intl.accept_languages": lang}}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("start a headless chromium session")
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script `{script}` failed: {e}"))
}

/// Poll a JavaScript condition; how long it took to hold, or None at the deadline.
async fn wait_for(c: &Client, condition: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let script = format!("return !!({condition});");
    loop {
        if c.execute(&script, vec![]).await.ok().and_then(|v| v.as_bool()) == Some(true) {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn must(c: &Client, condition: &str, within: Duration, what: &str) -> Duration {
    match wait_for(c, condition, within).await {
        Some(t) => t,
        None => {
            let text = js(c, "return document.body.innerText").await;
            panic!(
                "{what}: `{condition}` did not hold within {within:?}. The page said:\n{}",
                text.as_str().unwrap_or("")
            )
        }
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

const SIGNED_IN: &str = "document.body.dataset.view === 'signed-in' \
    && document.getElementById('stream-status').dataset.state === 'open'";
const SIGNED_OUT: &str = "document.body.dataset.view === 'signed-out'";

fn point(value: i64) -> String {
    format!("document.querySelector('#hr-chart circle.point[data-value=\"{value}\"]') !== null")
}

/// An invitation in one of the sharing panel's lists (`invitations-sent` / `-received`), naming
/// `email`, with `status`.
fn invitation(list: &str, email: &str, status: &str) -> String {
    format!(
        "[...document.querySelectorAll('#{list} li')].some(li => li.dataset.status === '{status}' \
         && li.textContent.includes('{email}'))"
    )
}

/// A wearable: its own session (start_session) and health.ingest as its user.
struct Wearable {
    db: tokio_postgres::Client,
    token: String,
}

impl Wearable {
    async fn sign_in(email: &str, password: &str) -> Wearable {
        let db = connect().await;
        let token: String = db
            .query_one("SELECT auth.start_session($1, $2)->>'access_token'", &[&email, &password])
            .await
            .unwrap()
            .get(0);
        Wearable { db, token }
    }

    /// Samples ago `seconds` before now: (kind, value, unit, seconds ago).
    async fn write(&self, samples: &[(&str, f64, &str, i64)]) {
        // Milliseconds: two samples of one kind in the same second are not duplicates.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let body: Vec<Value> = samples
            .iter()
            .map(|(kind, value, unit, ago)| {
                json!({"kind": kind, "value": value, "unit": unit, "source": "test-watch",
                       "recorded_at": rfc3339(now - ago * 1000)})
            })
            .collect();
        self.db.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
        self.db.query_one("SELECT auth.authenticate($1)", &[&self.token]).await.unwrap();
        let statuses: Vec<String> = self
            .db
            .query("SELECT status FROM health.ingest($1::text::regclass, $2::jsonb)", &[&TABLE, &Value::Array(body)])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.db.batch_execute("COMMIT").await.unwrap();
        assert!(statuses.iter().all(|s| s == "inserted"), "wearable samples {samples:?} stored: {statuses:?}");
    }
}

/// RFC 3339 UTC with milliseconds, for Unix milliseconds (no date-time dependency).
fn rfc3339(unix_ms: i64) -> String {
    let (unix, ms) = (unix_ms.div_euclid(1000), unix_ms.rem_euclid(1000));
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (d, m) = (doy - (153 * mp + 2) / 5 + 1, if mp < 10 { mp + 3 } else { mp - 9 });
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A TCP proxy in front of the gateway that the test can cut (every open connection dropped,
/// new ones refused) and restore: a network drop as the browser sees it.
struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            down: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
        };
        let (down, open) = (proxy.down.clone(), proxy.open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if down.load(Ordering::SeqCst) {
                    continue; // dropped: the browser sees a network error
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(task.abort_handle());
            }
        });
        proxy
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// One plain HTTP/1.0 request: (status, response head, body). axum writes header names in
/// lower case.
async fn http(addr: SocketAddr, request_head: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{request_head}\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The gateway's own guarantees, asked over plain HTTP: CSP on the page, no inline script,
/// state changes refused without the page's header or from another origin.
async fn check_headers(addr: SocketAddr) {
    let (status, head, body) = http(addr, "GET / HTTP/1.0", "").await;
    assert_eq!(status, 200);
    let csp = head.lines().find(|l| l.starts_with("content-security-policy:")).expect("a CSP header");
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert!(body.matches("<script").count() >= 1);
    assert_eq!(
        body.matches("<script").count(),
        body.matches("<script type=\"module\" src=\"/").count(),
        "no inline script"
    );
    let signin = r#"{"email": "nobody@example.com", "password": "whatever password"}"#;
    let json = "Content-Type: application/json";
    let (status, _, body) = http(addr, &format!("POST /api/session/signin HTTP/1.0\r\n{json}"), signin).await;
    assert_eq!(status, 403, "a POST without X-Requested-With is refused: {body}");
    let (status, _, _) = http(
        addr,
        &format!("POST /api/session/signin HTTP/1.0\r\n{json}\r\nX-Requested-With: health-rls\r\nOrigin: http://evil.example"),
        signin,
    )
    .await;
    assert_eq!(status, 403, "a POST from another origin is refused");
    let (status, _, _) = http(
        addr,
        "POST /api/session/signin HTTP/1.0\r\nContent-Type: text/plain\r\nX-Requested-With: health-rls",
        signin,
    )
    .await;
    assert_eq!(status, 403, "a form-like (non-JSON) POST is refused");
    let (status, _, body) =
        http(addr, &format!("POST /api/session/signin HTTP/1.0\r\n{json}\r\nX-Requested-With: health-rls"), signin)
            .await;
    assert_eq!(status, 401, "the page's own kind of request gets through the guard: {body}");
    assert!(body.contains("Wrong email or password."), "{body}");
    let (status, _, _) = http(addr, "GET /api/stream HTTP/1.0", "").await;
    assert_eq!(status, 401, "no stream without the session cookie");

    // The session is two HttpOnly, SameSite=Strict cookies; no token in any body. A refresh
    // rotates the refresh token (single-use) and sets both cookies again.
    let page = format!("{json}\r\nX-Requested-With: health-rls\r\nOrigin: http://{addr}");
    let account = format!(
        r#"{{"email": "cookie.{}@example.com", "password": "a long password"}}"#,
        uuid::Uuid::new_v4().simple()
    );
    let (status, head, body) = http(addr, &format!("POST /api/session/signup HTTP/1.0\r\n{page}"), &account).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("token"), "no token in the body: {body}");
    let cookies = |head: &str| -> Vec<String> {
        head.lines().filter_map(|l| l.strip_prefix("set-cookie: ")).map(str::to_string).collect()
    };
    let set = cookies(&head);
    assert_eq!(set.len(), 2, "{head}");
    for c in &set {
        assert!(c.contains("; HttpOnly") && c.contains("; SameSite=Strict"), "{c}");
    }
    assert!(set.iter().any(|c| c.starts_with("hr_access=") && c.contains("Path=/api;")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("hr_refresh=") && c.contains("Path=/api/session;")), "{set:?}");
    let refresh_cookie =
        set.iter().find(|c| c.starts_with("hr_refresh=")).unwrap().split(';').next().unwrap().to_string();
    let (status, head, body) =
        http(addr, &format!("POST /api/session/refresh HTTP/1.0\r\n{page}\r\nCookie: {refresh_cookie}"), "{}").await;
    assert_eq!(status, 200, "{body}");
    let rotated = cookies(&head);
    assert_eq!(rotated.len(), 2, "both cookies set again: {head}");
    assert!(!rotated.iter().any(|c| c.starts_with(&refresh_cookie)), "a new refresh token: {rotated:?}");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// A screenshot of the sharing panel (scrolled to its top).
async fn screenshot_sharing(c: &Client, name: &str) {
    js(c, "document.getElementById('shares-title').closest('section').scrollIntoView(); return true").await;
    screenshot(c, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}; SELECT health.create_metric_table('{TABLE}');"))
        .await
        .expect("the metric table");
    let relay = relay::Relay::connect(&dsn()).await.unwrap();
    let g = gateway::Gateway::new(relay.clone(), &dsn(), TABLE, false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let direct = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gateway::router(g)).await });
    check_headers(direct).await;

    // The browsers reach the gateway through a proxy the test can cut.
    let proxy = Proxy::start(direct).await;
    let base = format!("http://{}/", proxy.addr);
    let driver = start_driver().await;
    let (a, b, c) = (browser(&driver).await, browser(&driver).await, browser_in(&driver, "en-GB").await);
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        scenario(&admin, &relay, &proxy, &base, &a, &b).await;
        trends(&admin, &base, &c).await;
    }))
    .await;
    // Close the browsers whatever happened (chromium must not outlive the test).
    let _ = a.close().await;
    let _ = b.close().await;
    let _ = c.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(
    admin: &tokio_postgres::Client,
    relay: &Arc<relay::Relay>,
    proxy: &Proxy,
    base: &str,
    a: &Client,
    b: &Client,
) {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (a_email, b_email) = (format!("ada.{run}@example.com"), format!("grace.{run}@example.com"));
    let (a_pw, b_pw) = ("ada's long password", "grace's long password");
    let secs = Duration::from_secs;

    // B first meets the errors, in words: a password the database's rules refuse, then a
    // sign-in to an account that does not exist yet.
    b.goto(base).await.unwrap();
    must(b, SIGNED_OUT, secs(10), "the sign-in form").await;
    fill(b, "#email", &b_email).await;
    fill(b, "#password", "short").await;
    click(b, "#sign-up").await;
    must(b, "document.getElementById('notice').textContent.includes('at least')", secs(5), "password rules shown")
        .await;
    fill(b, "#password", b_pw).await;
    click(b, "#sign-in").await;
    must(b, "document.getElementById('notice').textContent === 'Wrong email or password.'", secs(5), "wrong password")
        .await;
    click(b, "#sign-up").await;
    must(b, SIGNED_IN, secs(10), "B signed up").await;

    // A's wearable has an hour of history before A first looks.
    admin.query_one("SELECT auth.sign_up($1, $2)", &[&a_email, &a_pw]).await.unwrap();
    let watch = Wearable::sign_in(&a_email, a_pw).await;
    let history: Vec<(&str, f64, &str, i64)> =
        (0..24).map(|i| ("heart_rate", 62.0 + ((i * 7) % 23) as f64, "/min", 3500 - i * 140)).collect();
    watch.write(&history).await;
    watch.write(&[("oxygen_saturation", 97.5, "%", 600), ("steps", 4321.0, "{steps}", 300)]).await;

    // A signs in (not up: the account exists) in the other browser.
    a.goto(base).await.unwrap();
    must(a, SIGNED_OUT, secs(10), "the sign-in form").await;
    fill(a, "#email", &a_email).await;
    fill(a, "#password", a_pw).await;
    click(a, "#sign-in").await;
    must(a, SIGNED_IN, secs(10), "A signed in").await;
    must(a, "document.getElementById('hr-chart').dataset.count === '24'", secs(5), "A's history on the chart").await;
    must(
        a,
        "document.querySelector('#latest tr[data-kind=\"steps\"]')?.textContent.includes('4,321 steps')",
        secs(2),
        "latest",
    )
    .await;
    assert_eq!(js(a, "return document.cookie").await, json!(""), "no cookie is readable by the page's script");
    let storage = js(a, "return localStorage.length + sessionStorage.length").await;
    assert_eq!(storage, json!(0), "nothing kept in page storage");
    let foreign = "performance.getEntriesByType('resource').every(e => e.name.startsWith(location.origin))";
    assert_eq!(js(a, &format!("return {foreign}")).await, json!(true), "nothing loaded from another host");
    assert_eq!(relay.listening(), 2, "one LISTEN per signed-in user");

    // The wearable writes; A's chart shows the point within 2 s, B's never does.
    watch.write(&[("heart_rate", 123.0, "/min", 0)]).await;
    let took = must(a, &point(123), secs(2), "the new point on A's chart").await;
    must(
        a,
        "document.querySelector('#latest tr[data-kind=\"heart_rate\"]').dataset.value === '123'",
        secs(1),
        "latest",
    )
    .await;
    println!("dashboard: the wearable's sample was on A's chart {took:?} after its commit");
    // B's own sample reaches B's page (its stream works), so B not showing A's is meaningful.
    admin.query_one("SELECT auth.sign_up($1, $2)", &[&b_email, &b_pw]).await.unwrap();
    let b_watch = Wearable::sign_in(&b_email, b_pw).await;
    b_watch.write(&[("heart_rate", 58.0, "/min", 0)]).await;
    must(b, &point(58), secs(2), "B's own sample on B's chart").await;
    assert_eq!(js(b, &format!("return {}", point(123))).await, json!(false), "B's page never shows A's sample");
    assert_eq!(js(b, "return document.getElementById('hr-chart').dataset.count").await, json!("1"));
    assert_eq!(js(b, "return document.body.innerText.includes('4,321')").await, json!(false));
    assert_eq!(js(a, &format!("return {}", point(58))).await, json!(false), "A's page never shows B's sample");

    // A reloads: the point is still there (the page's snapshot, read as A through RLS).
    a.refresh().await.unwrap();
    must(a, SIGNED_IN, secs(10), "still signed in after a reload (HttpOnly cookie)").await;
    must(a, &point(123), secs(2), "the point after the reload").await;

    // The network drops; the wearable writes meanwhile; when the network is back the browser
    // reconnects with Last-Event-ID and the gateway replays the change feed.
    proxy.cut();
    must(a, "document.getElementById('stream-status').dataset.state !== 'open'", secs(5), "A notices the drop").await;
    watch.write(&[("heart_rate", 125.0, "/min", 0)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(js(a, &format!("return {}", point(125))).await, json!(false), "nothing arrives while cut off");
    proxy.restore();
    let took = must(a, &point(125), secs(12), "the sample written during the drop, caught up").await;
    println!("dashboard: caught up {took:?} after the network came back");
    must(a, SIGNED_IN, secs(5), "the stream is open again").await;

    // Sharing by email: A (Ada) invites B (Grace, who has an account) to read steps, not heart
    // rate, and invites an address nobody signed up with; the page answers both in the same
    // words (whether an address has an account is not the inviter's to learn).
    let nobody = format!("nobody.{run}@example.com");
    click(a, "#invite-form input[value=heart_rate]").await; // checked by default: uncheck
    click(a, "#invite-form input[value=steps]").await;
    fill(a, "#invitee", &a_email).await;
    click(a, "#invite").await;
    must(a, "document.getElementById('notice').textContent.includes('yourself')", secs(5), "refused in words").await;
    let mut answers = Vec::new();
    for email in [&b_email, &nobody] {
        fill(a, "#invitee", email).await;
        click(a, "#invite").await;
        let answered = format!("document.getElementById('notice').textContent.includes('{email}')");
        must(a, &answered, secs(5), "the invitation's answer").await;
        must(a, &invitation("invitations-sent", email, "pending"), secs(5), "listed as pending").await;
        assert_eq!(js(a, "return document.getElementById('notice').dataset.kind").await, json!("info"));
        answers.push(text_of(a, "#notice").await.replace(email.as_str(), "<address>"));
    }
    assert_eq!(
        answers, ["Invitation sent to <address> — they will see it when they sign in with that address."; 2],
        "the same answer with and without an account"
    );
    // The API's answers to what the database refuses: its words, with the status that fits.
    let b_invitation = js(
        a,
        &format!("return [...document.querySelectorAll('#invitations-sent li')].find(li => li.textContent.includes('{b_email}')).dataset.invitationId"),
    )
    .await;
    let refused = a
        .execute_async(
            "const post = (path, body) => fetch(path, {method: 'POST', body: JSON.stringify(body), \
               headers: {'Content-Type': 'application/json', 'X-Requested-With': 'health-rls'}}) \
               .then(r => r.json().then(j => [r.status, j.code, j.error])); \
             Promise.all([post('/api/invitations', {email: 'not an address', kinds: ['steps']}), \
                          post('/api/invitations/accept', {id: arguments[0]}), \
                          post('/api/invitations/decline', {id: arguments[0]}), \
                          post('/api/invitations/revoke', {id: '00000000-0000-4000-8000-000000000000'})]) \
               .then(arguments[1])",
            vec![b_invitation],
        )
        .await
        .unwrap();
    let statuses: Vec<(Value, Value)> =
        refused.as_array().unwrap().iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(
        statuses,
        [
            (json!(400), json!("bad_request")),
            (json!(403), json!("forbidden")),
            (json!(403), json!("forbidden")),
            (json!(404), json!("not_found"))
        ],
        "another's invitation cannot be accepted or declined, nor an unknown one revoked: {refused}"
    );
    assert!(refused[0][2].as_str().unwrap().contains("email address"), "{refused}");

    b.refresh().await.unwrap();
    must(b, SIGNED_IN, secs(10), "B reloaded").await;
    // B's fresh snapshot (read as B) holds B's sample only, now that A has plenty.
    must(b, &point(58), secs(5), "B's sample after B's reload").await;
    assert_eq!(js(b, "return document.getElementById('hr-chart').dataset.count").await, json!("1"));
    assert_eq!(js(b, "return document.querySelectorAll('#latest tbody tr').length").await, json!(1));
    assert_eq!(js(b, "return document.body.innerText.includes('4,321')").await, json!(false));
    must(b, &invitation("invitations-received", &a_email, "pending"), secs(5), "B sees A's invitation").await;
    let offered = text_of(b, "#invitations-received li[data-status=\"pending\"]").await;
    assert!(offered.contains("Step count") && !offered.contains("Heart rate"), "{offered}");
    assert_eq!(
        js(b, "return document.querySelectorAll('#invitations-received li[data-status]').length").await,
        json!(1)
    );
    screenshot_sharing(b, "dashboard-b.png").await;
    click(b, "#invitations-received li[data-status=\"pending\"] button").await; // Accept
    must(b, &invitation("invitations-received", &a_email, "accepted"), secs(5), "accepted").await;
    let share_from_a = format!(
        "document.querySelector('#shares-received li[data-state=\"active\"]')?.textContent.includes('{a_email}')"
    );
    must(b, &share_from_a, secs(5), "the share, named by A's address").await;
    click(b, "#shares-received li[data-state=\"active\"] button").await;
    must(b, "document.querySelector('#shared-view li[data-kind]') !== null", secs(5), "B reads the share").await;
    let shown = js(
        b,
        "return [...document.querySelectorAll('#shared-view li[data-kind]')].map(li => [li.dataset.kind, li.dataset.value])",
    )
    .await;
    let a_id: uuid::Uuid =
        admin.query_one("SELECT id FROM auth.users WHERE email = $1", &[&a_email]).await.unwrap().get(0);
    b_watch.db.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    b_watch.db.query_one("SELECT auth.authenticate($1)", &[&b_watch.token]).await.unwrap();
    let rows = b_watch
        .db
        .query(
            "SELECT DISTINCT ON (kind) kind, value::text FROM health.shared_samples($1) ORDER BY kind, recorded_at DESC",
            &[&a_id],
        )
        .await
        .unwrap();
    b_watch.db.batch_execute("COMMIT").await.unwrap();
    let expected: Vec<Value> = rows.iter().map(|r| json!([r.get::<_, String>(0), r.get::<_, String>(1)])).collect();
    assert_eq!(shown, json!(expected), "B's page shows what health.shared_samples returns to B");
    assert_eq!(expected, [json!(["steps", "4321"])], "steps only");
    assert!(text_of(b, "#shared-view").await.contains("Step count: 4,321 steps"));

    a.refresh().await.unwrap();
    must(a, SIGNED_IN, secs(10), "A reloaded").await;
    let log = format!("document.querySelector('#access-log tbody').textContent.includes('{b_email}')");
    must(a, &log, secs(5), "A's access log names B").await;
    must(a, &invitation("invitations-sent", &b_email, "accepted"), secs(5), "A sees it accepted").await;
    must(a, &invitation("invitations-sent", &nobody, "pending"), secs(1), "the other still pending").await;
    let share_to_b =
        format!("document.querySelector('#shares-given li[data-state=\"active\"]')?.textContent.includes('{b_email}')");
    must(a, &share_to_b, secs(1), "the share, named by B's address").await;
    screenshot_sharing(a, "dashboard-a.png").await;
    click(a, "#invitations-sent li[data-status=\"accepted\"] button").await; // Revoke
    must(a, &invitation("invitations-sent", &b_email, "revoked"), secs(5), "revoked").await;
    must(a, "document.querySelector('#shares-given li[data-state=\"revoked\"]') !== null", secs(5), "share ended")
        .await;
    click(b, "#shares-received li[data-state=\"active\"] button").await; // B's list is from before
    must(b, "document.getElementById('notice').textContent.includes('no active share')", secs(5), "refused in words")
        .await;
    must(b, &invitation("invitations-received", &a_email, "revoked"), secs(5), "B's list says revoked").await;
    assert_eq!(js(b, "return document.getElementById('shared-view').textContent").await, json!(""));
    assert_eq!(js(b, "return document.querySelector('#shares-received li[data-state=\"active\"]')").await, Value::Null);
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE g.email = $2 AND s.revoked_at IS NOT NULL) \
               FROM health.shares s JOIN auth.users o ON o.id = s.owner_id JOIN auth.users g ON g.id = s.grantee_id \
              WHERE o.email = $1",
            &[&a_email, &b_email],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 1), "one share A → B, revoked");

    // A signs out. A second stream opened in A's page (which the page's sign-out does not
    // close) must be ended by the gateway when the database session is revoked.
    js(
        a,
        "window.probe = []; const s = new EventSource('/api/stream?after=0'); window.probeSource = s; \
         s.addEventListener('end', e => probe.push(JSON.parse(e.data).reason)); return true",
    )
    .await;
    must(a, "window.probeSource.readyState === 1", secs(5), "the probe stream is open").await;
    click(a, "#sign-out").await;
    must(a, SIGNED_OUT, secs(5), "A's page shows signed out").await;
    assert_eq!(text_of(a, "#notice").await, "You are signed out.");
    assert_eq!(js(a, "return document.getElementById('stream-status').dataset.state").await, json!("closed"));
    must(a, "window.probe.includes('session revoked')", secs(3), "the gateway ends A's other stream").await;
    must(a, "window.probeSource.readyState === 2", secs(6), "and refuses it afterwards (no cookie)").await;
    let deadline = Instant::now() + secs(3);
    while relay.listening() != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(relay.listening(), 1, "only B's channel is still listened on");
    let live: i64 = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.revoked_at IS NULL) FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id \
              WHERE u.email = $1",
            &[&a_email],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 1, "the browser's session is revoked, the watch's own session is not");
    a.refresh().await.unwrap();
    must(a, SIGNED_OUT, secs(10), "still signed out after a reload").await;
    watch.write(&[("heart_rate", 126.0, "/min", 0)]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(js(a, "return document.querySelectorAll('#hr-chart circle').length").await, json!(0));

    // B's session is ended elsewhere (every session of B): B's page says so in words.
    b_watch.db.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    b_watch.db.query_one("SELECT auth.authenticate($1)", &[&b_watch.token]).await.unwrap();
    b_watch.db.batch_execute("SELECT auth.sign_out_everywhere(); COMMIT").await.unwrap();
    must(b, SIGNED_OUT, secs(5), "B's page leaves the dashboard").await;
    assert!(text_of(b, "#notice").await.contains("session was ended"));
    b.refresh().await.unwrap();
    must(b, SIGNED_OUT, secs(10), "B after a reload").await;
    must(b, "document.getElementById('notice').textContent.includes('expired or was ended')", secs(2), "in words")
        .await;
}

/// What the trends card draws: its data attributes, and each average point's.
async fn drawn(c: &Client) -> Value {
    js(
        c,
        "const d = document.getElementById('trend-chart').dataset; \
         return {kind: d.kind, view: d.view, bucket: d.bucket, from: Number(d.from), tz: d.tz, unit: d.unit, \
                 count: Number(d.count), label: document.querySelector('#trend-chart text.unit').textContent, \
                 points: [...document.querySelectorAll('#trend-chart circle.avg')].map(p => \
                   [Number(p.dataset.start), Number(p.dataset.n), p.dataset.min, p.dataset.avg, p.dataset.max])}",
    )
    .await
}

/// Open `view` of `kind` on the trends card and compare every point with health.summary read as
/// the same person for the page's own range and zone (the hour view: the raw samples), rounded as
/// SQL rounds to the catalog's display_precision; `fahrenheit`: after the °C → °F conversion.
/// Returns how many points were drawn.
async fn check_view(c: &Client, me: &Wearable, kind: &str, view: &str, fahrenheit: bool) -> usize {
    c.find(Locator::Css("#trend-kind")).await.unwrap().select_by_value(kind).await.unwrap();
    click(c, &format!("#view-{view}")).await;
    let shown = format!(
        "document.getElementById('trend-chart').dataset.view === '{view}' \
         && document.getElementById('trend-chart').dataset.kind === '{kind}'"
    );
    must(c, &shown, Duration::from_secs(10), &format!("the {view} view of {kind}")).await;
    let d = drawn(c).await;
    assert_eq!(d["tz"], json!(BROWSER_TZ), "the page cuts buckets in the browser's zone: {d}");
    let (from, tz) = (d["from"].as_i64().unwrap(), BROWSER_TZ);
    let shown_value = if fahrenheit { "(v * 9 / 5 + 32)" } else { "v" };
    let round = |col: &str| {
        format!(
            "round(({})::numeric, (SELECT coalesce(display_precision, 2) FROM health.metric_kinds WHERE code = $1))::text",
            shown_value.replace('v', col)
        )
    };
    let source = if view == "hour" {
        assert_eq!(d["bucket"], json!("sample"));
        format!("SELECT (extract(epoch FROM recorded_at) * 1000)::int8 AS s, 1::int8 AS n, value AS min, value AS avg, value AS max \
                   FROM {TABLE} WHERE kind = $1 AND recorded_at >= to_timestamp($2::int8 / 1000.0) AND $3::text IS NOT NULL \
                  ORDER BY recorded_at")
    } else {
        format!(
            "SELECT (extract(epoch FROM bucket_start) * 1000)::int8 AS s, n, min, avg, max \
               FROM health.summary($1, {}, to_timestamp($2::int8 / 1000.0), NULL, $3)",
            match view {
                "day" => "'hour'",
                "week" | "month" => "'day'",
                _ => "'week'",
            }
        )
    };
    let sql = format!("SELECT s, n, {}, {}, {} FROM ({source}) q", round("min"), round("avg"), round("max"));
    me.db.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    me.db.query_one("SELECT auth.authenticate($1)", &[&me.token]).await.unwrap();
    let rows = me.db.query(&sql, &[&kind, &from, &tz]).await.unwrap();
    me.db.batch_execute("COMMIT").await.unwrap();
    let expected: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!([
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4)
            ])
        })
        .collect();
    assert!(!expected.is_empty(), "{kind} has samples in the {view} view's range");
    assert_eq!(d["count"], json!(expected.len()), "{view} of {kind}: one point per summary row");
    assert_eq!(d["points"], json!(expected), "{view} of {kind}: the page's points are the SQL's, rounded alike");
    let unit = match (kind, fahrenheit) {
        ("heart_rate", _) => "bpm",
        (_, false) => "°C",
        (_, true) => "°F",
    };
    assert_eq!((d["unit"].as_str(), d["label"].as_str()), (Some(unit), Some(unit)), "{d}");
    let body = js(c, "return document.body.innerText").await;
    let body = body.as_str().unwrap();
    assert!(!body.contains("Cel") && !body.contains("/min"), "no UCUM code on the page:\n{body}");
    expected.len()
}

/// A third person (metric units: an en-GB browser) with a year of hourly heart rate and a daily
/// body temperature reads the trends card in every view.
async fn trends(admin: &tokio_postgres::Client, base: &str, c: &Client) {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (email, pw) = (format!("cyd.{run}@example.com"), "cyd's long password");
    let id: uuid::Uuid = admin.query_one("SELECT auth.sign_up($1, $2)", &[&email, &pw]).await.unwrap().get(0);
    // Whole beats per minute and temperatures of three decimals away from .x5: no average sits
    // on a rounding half (SQL and the page both round half away from zero, but from slightly
    // different decimal forms of a double).
    admin
        .execute(
            &format!(
                "INSERT INTO {TABLE} (user_id, kind, value, unit, recorded_at, source)
                 SELECT $1::uuid, 'heart_rate',
                        -- awake from 6 to 22 local time, a little slower in summer, some noise
                        round(60 + 14 * greatest(0, sin(pi() * (extract(hour FROM t AT TIME ZONE '{BROWSER_TZ}') - 6) / 16))
                              + 3 * cos(2 * pi() * h / 8766) + h * 37 % 11),
                        '/min', t, 'seed'
                   FROM generate_series(0, 365 * 24) h, LATERAL (SELECT date_trunc('hour', now()) - h * interval '1 hour') x(t)
                 UNION ALL
                 SELECT $1::uuid, 'body_temperature', 36.113 + (d * 7 % 11) * 0.09, 'Cel',
                        -- a second before now, and at that time on each earlier day: today has
                        -- one too, even in the first minutes of the browser's local day
                        now() - d * interval '1 day' - interval '1 second', 'seed'
                   FROM generate_series(0, 365) d"
            ),
            &[&id],
        )
        .await
        .unwrap();
    let me = Wearable::sign_in(&email, pw).await;
    let secs = Duration::from_secs;

    c.goto(base).await.unwrap();
    must(c, SIGNED_OUT, secs(10), "the sign-in form").await;
    fill(c, "#email", &email).await;
    fill(c, "#password", pw).await;
    click(c, "#sign-in").await;
    must(c, SIGNED_IN, secs(10), "C signed in").await;
    assert_eq!(js(c, "return navigator.language").await, json!("en-GB"));
    assert_eq!(js(c, "return document.getElementById('units').value").await, json!("metric"), "en-GB: metric");
    let kinds = js(c, "return [...document.querySelectorAll('#trend-kind option')].map(o => o.value).sort()").await;
    assert_eq!(kinds, json!(["body_temperature", "heart_rate"]), "the kinds C has samples of");

    // The conversions and rounding, as the page's own module does them.
    let unit_checks = c
        .execute_async(
            "import('/units.js').then(u => { \
               const temp = {unit: 'Cel', display_unit: '°C', display_precision: 1}; \
               const kg = {unit: 'kg', display_unit: 'kg', display_precision: 1}; \
               const steps = {unit: '{steps}', display_unit: null, display_precision: 0}; \
               arguments[0]([u.defaultSystem('en-US'), u.defaultSystem('en-GB'), u.defaultSystem('de'), \
                 u.show(37, u.presentation(temp, 'us'), 'en-US'), u.show(36.65, u.presentation(temp, 'metric'), 'en-US'), \
                 u.show(70, u.presentation(kg, 'us'), 'en-US'), u.show(70, u.presentation(kg, 'metric'), 'en-US'), \
                 u.show(12345, u.presentation(steps, 'us'), 'en-US'), u.plainNumber(12345.5, 0), u.plainNumber(36.65, 1)]); })",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        unit_checks,
        json!(["us", "metric", "metric", "98.6 °F", "36.7 °C", "154.3 lb", "70.0 kg", "12,345 steps", "12346", "36.7"])
    );

    // The page's summaries run in read committed transactions, where health.summary keeps its
    // hourly rollups: after the page alone has drawn a month of heart rate, they are current.
    c.find(Locator::Css("#trend-kind")).await.unwrap().select_by_value("heart_rate").await.unwrap();
    click(c, "#view-month").await;
    must(
        c,
        "document.getElementById('trend-chart').dataset.view === 'month' \
         && document.getElementById('trend-chart').dataset.kind === 'heart_rate'",
        secs(10),
        "the month view of heart rate",
    )
    .await;
    let current: bool = admin
        .query_one(
            "SELECT coalesce((SELECT s.through_seq = k.last_seq FROM health_rls.summary_state s \
                                JOIN health_rls.change_counters k USING (user_id) \
                               WHERE s.user_id = $1 AND s.kind = 'heart_rate'), false)",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(current, "the page's summary built the hourly rollups of heart rate");

    // Every view of heart rate; the month view is one point per local day of the last 30.
    for view in ["hour", "day", "week", "year", "month"] {
        let n = check_view(c, &me, "heart_rate", view, false).await;
        println!("dashboard: {view} view of heart rate, {n} points");
    }
    let page_from = drawn(c).await["from"].as_i64().unwrap();
    let month_from: i64 = admin
        .query_one(
            "SELECT (extract(epoch FROM (date_trunc('day', now() AT TIME ZONE $1) - interval '29 days') AT TIME ZONE $1) \
                     * 1000)::int8",
            &[&BROWSER_TZ],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(page_from, month_from, "the month view starts at local midnight 29 days ago");
    assert_eq!(drawn(c).await["count"], json!(30), "a year of hourly samples: all 30 local days");
    let latest = text_of(c, "#latest tr[data-kind=\"heart_rate\"]").await;
    assert!(latest.contains(" bpm"), "{latest}");
    c.execute("window.scrollTo(0, 0); return true", vec![]).await.unwrap();
    screenshot(c, "dashboard-month.png").await;

    assert_eq!(check_view(c, &me, "body_temperature", "month", false).await, 30);
    let latest = text_of(c, "#latest tr[data-kind=\"body_temperature\"]").await;
    assert!(latest.contains(" °C"), "{latest}");

    // US units: °F, chosen once and kept in this browser (the one thing the page stores).
    c.find(Locator::Css("#units")).await.unwrap().select_by_value("us").await.unwrap();
    must(c, "document.getElementById('trend-chart').dataset.unit === '°F'", secs(5), "°F").await;
    check_view(c, &me, "body_temperature", "month", true).await;
    check_view(c, &me, "body_temperature", "year", true).await;
    let latest = text_of(c, "#latest tr[data-kind=\"body_temperature\"]").await;
    assert!(latest.contains(" °F"), "{latest}");
    assert_eq!(js(c, "return [localStorage.length, localStorage.getItem('units')]").await, json!([1, "us"]));
    screenshot(c, "dashboard-year-us.png").await;
    c.refresh().await.unwrap();
    must(c, SIGNED_IN, secs(10), "C after a reload").await;
    must(
        c,
        "document.querySelector('#latest tr[data-kind=\"body_temperature\"]')?.textContent.includes('°F')",
        secs(5),
        "US units kept",
    )
    .await;

    // Parameters the database refuses come back as the API's error, in its words.
    let refused = c
        .execute_async(
            "Promise.all(['kind=pulse', 'kind=heart_rate&tz=Mars%2FOlympus', 'kind=heart_rate&bucket=year', \
                          'kind=heart_rate&from=yesterday-ish'].map(q => \
               fetch('/api/summary?' + q).then(r => r.json().then(j => [r.status, j.code, j.error])))) \
             .then(arguments[0])",
            vec![],
        )
        .await
        .unwrap();
    for r in refused.as_array().unwrap() {
        assert_eq!((&r[0], &r[1]), (&json!(400), &json!("bad_request")), "{refused}");
    }
    assert!(refused[0][2].as_str().unwrap().contains("unknown kind"), "{refused}");
    assert!(refused[1][2].as_str().unwrap().contains("time zone"), "{refused}");
}
