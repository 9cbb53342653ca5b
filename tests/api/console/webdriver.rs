//! A small W3C WebDriver client for the browser tests: chromedriver on a
//! free port, headless Chromium, and the dozen commands the tests use.
//!
//! Written here rather than taken from fantoccini, whose protocol types come
//! from Mozilla's `webdriver` crate (MPL-2.0, outside the licence allow-list
//! of deny.toml, and with an older `http` and ICU in tow); the protocol
//! itself is plain JSON over HTTP.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{json, Value};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where chromedriver and Chromium are (Debian's `chromium-driver` and
/// `chromium`), unless `ARKKU_CHROMEDRIVER` / `ARKKU_CHROMIUM` say otherwise.
fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    path.exists().then_some(path)
}

/// A running chromedriver; killed with its process group when dropped.
pub struct Driver {
    child: Child,
    base: String,
    profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share its process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or says why not: `None` and a SKIPPED note when it is
/// not installed, a panic under CI (`CI` set), where it must be.
pub async fn start(test: &str) -> Option<Driver> {
    let (Some(driver), Some(_)) = (
        tool("ARKKU_CHROMEDRIVER", "/usr/bin/chromedriver"),
        tool("ARKKU_CHROMIUM", "/usr/bin/chromium"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver or chromium is missing, and CI must run the browser tests \
             (.ci/run installs Debian's chromium and chromium-driver)"
        );
        println!(
            "\nnote: browser test {test} SKIPPED: /usr/bin/chromedriver or /usr/bin/chromium \
             is missing (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    use std::os::unix::process::CommandExt as _;
    let profile = tempfile::tempdir().expect("profile dir");
    let downloads = tempfile::tempdir().expect("download dir");
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        // Chromium's own temporary files go with the profile, removed at the end.
        .env("TMPDIR", profile.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let d = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
        profile,
        downloads,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http.get(format!("{}/status", d.base)).send().await;
        if let Ok(r) = ready {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v["value"]["ready"] == true {
                return Some(d);
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One browser session, whose screenshots are named by its test.
pub struct Browser {
    http: reqwest::Client,
    url: String,
    shots: PathBuf,
    prefix: String,
    taken: u32,
    downloads: PathBuf,
}

impl Driver {
    /// Opens headless Chromium.
    pub async fn browser(&self, prefix: &str) -> Browser {
        let chromium = tool("ARKKU_CHROMIUM", "/usr/bin/chromium").expect("chromium");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,800",
                         "--lang=en-GB",
                         format!("--user-data-dir={}", self.profile.path().display())],
                // Downloads land in the driver's own directory, unasked;
                // a page may start more than one (a CSV and its manifest)
                // without Chromium holding back the second.
                "prefs": {
                    "download.default_directory": self.downloads.path(),
                    "download.prompt_for_download": false,
                    "profile.default_content_setting_values.automatic_downloads": 1,
                },
            }
        }}});
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let v = call(
            &http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(caps),
        )
        .await;
        let id = v["sessionId"].as_str().expect("a session id").to_owned();
        Browser {
            http,
            url: format!("{}/session/{id}", self.base),
            shots: screenshot_dir(),
            prefix: prefix.to_owned(),
            taken: 0,
            downloads: self.downloads.path().to_owned(),
        }
    }
}

/// `target/screenshots/`, beside the test binary's `debug/`.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// One WebDriver command; its `value`, or a panic with the driver's error.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let rb = http.request(method.clone(), url);
    let rb = match body {
        Some(b) => rb.json(&b),
        None if method == reqwest::Method::POST => rb.json(&json!({})),
        None => rb,
    };
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status();
    let v: Value = r.json().await.expect("a JSON answer");
    assert!(status.is_success(), "{method} {url}: {status} {v}");
    v["value"].clone()
}

impl Browser {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Resizes the window, so that a screenshot shows a long page whole.
    pub async fn resize(&self, width: u32, height: u32) {
        let rect = json!({ "width": width, "height": height });
        self.cmd(reqwest::Method::POST, "/window/rect", Some(rect))
            .await;
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.cmd(reqwest::Method::POST, "/refresh", None).await;
    }

    /// The element `css` selects (the test fails if there is none).
    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// How many elements `css` selects.
    pub async fn count(&self, css: &str) -> usize {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array().map_or(0, Vec::len)
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        let path = format!("/element/{e}/value");
        self.cmd(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await;
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/click"), None)
            .await;
    }

    /// Clicks the element `css` selects and waits until the page it was on
    /// has gone (a form sent or a link followed), so the next command sees
    /// the new page rather than racing it.
    pub async fn click_and_wait(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self
                .http
                .get(format!("{}/element/{old}/name", self.url))
                .send()
                .await
                .expect("staleness query");
            if !r.status().is_success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not change after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        let v = self
            .cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute of the element `css` selects.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        let path = format!("/element/{e}/attribute/{name}");
        let v = self.cmd(reqwest::Method::GET, &path, None).await;
        v.as_str().map(str::to_owned)
    }

    /// The page's HTML as the browser holds it (to check what a page does
    /// not contain, hidden or not).
    pub async fn source(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/source", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/title", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The page's URL.
    pub async fn current_url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The browser's cookie `name` (with its attributes), if it has one.
    pub async fn cookie(&self, name: &str) -> Option<Value> {
        let v = self.cmd(reqwest::Method::GET, "/cookie", None).await;
        v.as_array()?.iter().find(|c| c["name"] == name).cloned()
    }

    /// Whether an alert is open (a script ran that should not have).
    pub async fn alert_open(&self) -> bool {
        let r = self
            .http
            .get(format!("{}/alert/text", self.url))
            .send()
            .await
            .expect("alert query");
        r.status().is_success()
    }

    /// Saves a PNG of the page as `target/screenshots/PREFIX-NN-NAME.png`.
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        self.save_png(&v, name)
    }

    /// Saves a PNG of the page in a window `height` pixels tall (to see
    /// below the usual window's fold), then restores the window's size;
    /// named as [`Browser::screenshot`].
    pub async fn screenshot_tall(&mut self, name: &str, height: u32) -> PathBuf {
        let rect = |h: u32| Some(json!({"width": 1100, "height": h}));
        self.cmd(reqwest::Method::POST, "/window/rect", rect(height))
            .await;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        self.cmd(reqwest::Method::POST, "/window/rect", rect(800))
            .await;
        self.save_png(&v, name)
    }

    fn save_png(&mut self, v: &Value, name: &str) -> PathBuf {
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("PNG decodes");
        self.taken += 1;
        let path = self
            .shots
            .join(format!("{}-{:02}-{name}.png", self.prefix, self.taken));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Clicks the link or button `css` selects, as a person would to
    /// download a file, and waits until a new file has finished arriving
    /// in the download directory; returns its path (its name is the one the
    /// server's `Content-Disposition` gave).
    pub async fn download(&self, css: &str) -> PathBuf {
        let before = self.downloaded();
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.downloaded();
            let fresh: Vec<_> = now.iter().filter(|p| !before.contains(p)).collect();
            // Chromium writes `NAME.crdownload` (or a hidden
            // `.org.chromium.Chromium.XXXXXX`) and renames it when done.
            let partial = fresh.iter().any(|p| {
                p.extension().is_some_and(|e| e == "crdownload")
                    || p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            });
            if let (false, [done]) = (partial, fresh.as_slice()) {
                return (*done).clone();
            }
            assert!(
                Instant::now() < deadline,
                "no download finished after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The files in the download directory.
    fn downloaded(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.downloads)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    /// Ends the browser session (Chromium exits).
    pub async fn close(self) {
        let _ = self.http.delete(&self.url).send().await;
    }
}
