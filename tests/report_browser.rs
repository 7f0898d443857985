//! The HTML report in a real browser (headless Chromium, installed by scripts/test.sh): it renders
//! its styled charts, prints to PDF, and runs no script planted in the logs.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;

fn chromium() -> PathBuf {
    let path = std::env::var_os("AUDITLAKE_TEST_CHROMIUM").map(PathBuf::from).unwrap_or("/usr/bin/chromium".into());
    assert!(path.exists(), "{} not found: run scripts/test.sh, which installs Debian's chromium", path.display());
    path
}

/// Runs headless Chromium on `page` with `args`; returns stdout.
fn browse(page: &Path, profile: &Path, args: &[String]) -> String {
    let out = Process::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium writes), decoded with the
/// format's own rules: chunks, zlib, per-row filters.
fn png_pixels(bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let (mut width, mut height, mut channels, mut idat) = (0, 0, 0, Vec::new());
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let stride = width * channels;
    let mut out = vec![0u8; stride * height];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels { out[y * stride + x - channels] as i32 } else { 0 };
            let b = if y > 0 { out[(y - 1) * stride + x] as i32 } else { 0 };
            let c = if y > 0 && x >= channels { out[(y - 1) * stride + x - channels] as i32 } else { 0 };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            out[y * stride + x] = (line[x] as i32 + predictor) as u8;
        }
    }
    (width, height, channels, out)
}

#[test]
fn the_html_report_renders_its_charts_and_runs_no_planted_script() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let hostile = dir.path().join("hostile.ndjson");
    let entries = [
        serde_json::json!({"id": "x1", "timestamp": "2026-09-03T09:00:00Z", "action": "User role updated",
            "actor_name": "<script>document.title='PWNED'</script>", "actor_type": "web_app",
            "email": "mallory@evil.example", "account_name": "acme", "account_id": "a1"}),
        serde_json::json!({"id": "x2", "timestamp": "2026-09-03T09:01:00Z", "action": "Secret created",
            "actor_name": "<img src=x onerror=\"document.title='PWNED'\">", "actor_type": "web_app",
            "resource_name": "<svg onload=\"document.title='PWNED'\"></svg>",
            "email": "mallory@evil.example", "account_name": "acme", "account_id": "a1"}),
    ];
    std::fs::write(&hostile, entries.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    for input in [common::sample_data(), hostile] {
        let mut cmd = Command::cargo_bin("auditlake").unwrap();
        cmd.env_remove("AUDITLAKE_LAKE")
            .arg("--lake")
            .arg(&lake)
            .arg("ingest")
            .arg(input)
            .assert()
            .code(predicates::ord::lt(4));
    }
    let page = dir.path().join("report.html");
    Command::cargo_bin("auditlake")
        .unwrap()
        .env_remove("AUDITLAKE_LAKE")
        .arg("--lake")
        .arg(&lake)
        .args(["report", "--from", "2026-09-01", "--to", "2026-09-30", "--out"])
        .arg(&page)
        .assert()
        .success();
    let profile = dir.path().join("profile");

    // The DOM after the browser loaded the page: a planted script would have renamed it.
    let dom = browse(&page, &profile, &["--dump-dom".into()]);
    assert!(dom.contains("<title>Torq audit log report, 2026-09-01 to 2026-09-30</title>"), "{}", &dom[..400]);
    assert!(!dom.contains("PWNED</title>") && !dom.contains("<title>PWNED"));
    assert!(dom.contains("&lt;script&gt;document.title='PWNED'&lt;/script&gt;"));
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 3, "events per day, per family, top actors");
    assert!(dom.matches("<rect class=\"bar\"").count() > 10);

    // Rendered: the bars are painted in the stylesheet's colour, so both the SVG and the inline
    // CSS took effect under the page's Content-Security-Policy.
    let shot = dir.path().join("shot.png");
    browse(&page, &profile, &[format!("--screenshot={}", shot.display()), "--window-size=1280,1600".into()]);
    let (w, h, channels, px) = png_pixels(&std::fs::read(&shot).unwrap());
    assert_eq!((w, h), (1280, 1600));
    let bar = px
        .chunks(channels)
        .filter(|p| p[0].abs_diff(0x2b) < 8 && p[1].abs_diff(0x6c) < 8 && p[2].abs_diff(0xb0) < 8)
        .count();
    assert!(bar > 2000, "only {bar} pixels in the bar colour: charts not drawn or not styled");

    // Printable: Chromium turns it into a multi-page PDF.
    let pdf = dir.path().join("report.pdf");
    browse(&page, &profile, &[format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer".into()]);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    assert!(bytes.len() > 20_000, "a {}-byte PDF is too small to hold the report", bytes.len());
}
