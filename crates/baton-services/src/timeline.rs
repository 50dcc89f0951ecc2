//! The timeline of a run: when the user's token expired, which call carried which token, and
//! how each call ended, as text and as a self-contained HTML page with one SVG chart per run (no
//! scripts, no external resources), so that an operator sees where a chain broke.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Which token authenticated a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// The end user's token (`X-Auth-Token`).
    User,
    /// The calling service's service token (`X-Service-Token`).
    Service,
    /// The calling service's own token as `X-Auth-Token` (an admin call).
    Own,
    /// The operation's continuation token as `X-Auth-Token`, acting for the user.
    Continuation,
}

/// A token a call carried, by fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct TokenUse {
    /// Whose token it was.
    pub kind: TokenKind,
    /// First 12 hex digits of the token's SHA-256.
    pub fingerprint: String,
    /// The token was past its expiry when the call was sent.
    pub expired: bool,
}

/// One call of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// When the call was sent.
    pub at: DateTime<Utc>,
    /// How long the answer took.
    pub duration_ms: f64,
    /// Caller and callee (`user`, `compute`, `network`, `volume`, `image`).
    pub from: String,
    /// The callee.
    pub to: String,
    /// The HTTP method.
    pub method: String,
    /// The path at the callee.
    pub path: String,
    /// The operation step the call belongs to.
    pub step: String,
    /// The tokens it carried.
    pub tokens: Vec<TokenUse>,
    /// HTTP status; 0 when nothing answered.
    pub status: u16,
    /// The receiver's `x-auth-failure-reason`.
    pub reason: Option<String>,
    /// The error message of a refusal.
    pub message: Option<String>,
    /// What the callee's auth_token middleware recorded of the call (its audit record, see
    /// [`describe_record`]); `None` when it recorded nothing (the call never reached it).
    pub recorded: Option<String>,
}

/// A service's audit record of a request in words: whose token, who acted for whom, and the
/// decision (`volume: alice for nova, user token expired 4 s before, accepted`).
pub fn describe_record(lane: &str, r: &baton_authtoken::RequestRecord) -> String {
    let who = match (&r.user, &r.acting_service) {
        (Some(u), Some(a)) if r.continuation => format!("{u} through {a}'s continuation token"),
        (Some(u), Some(a)) => format!("{u} for {a}"),
        (Some(u), None) => u.clone(),
        (None, Some(a)) => format!("a refused user token for {a}"),
        (None, None) => "a refused user token".to_string(),
    };
    let expired = r
        .accepted_expired_for
        .map(|s| format!(", user token expired {s} s before"))
        .unwrap_or_default();
    let decision = if r.refused.is_empty() {
        "accepted".to_string()
    } else {
        let reasons: Vec<&str> = r.refused.iter().map(|f| f.as_str()).collect();
        format!("refused ({})", reasons.join(", "))
    };
    format!("{lane}: {who}{expired}, {decision}")
}

impl Entry {
    /// Whether the callee accepted the call (2xx or 3xx).
    pub fn ok(&self) -> bool {
        (200..400).contains(&self.status)
    }

    fn tokens_text(&self) -> String {
        self.tokens
            .iter()
            .map(|t| {
                let kind = match t.kind {
                    TokenKind::User => "user",
                    TokenKind::Service => "+service",
                    TokenKind::Own => "own",
                    TokenKind::Continuation => "continuation",
                };
                let expired = if t.expired { ", EXPIRED" } else { "" };
                format!(
                    "{kind}({}{expired})",
                    &t.fingerprint[..t.fingerprint.len().min(8)]
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn outcome_text(&self) -> String {
        let mut s = if self.status == 0 {
            "no answer".to_string()
        } else {
            self.status.to_string()
        };
        if let Some(r) = &self.reason {
            let _ = write!(s, " {r}");
        } else if !self.ok() {
            if let Some(m) = &self.message {
                let _ = write!(s, " {}", one_line(m, 70));
            }
        }
        s
    }
}

/// The timeline of one run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// e.g. `live migration (block) — [service_user] none`.
    pub title: String,
    /// When the run started.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// The fingerprint of the user token the operation started with.
    pub user_token: String,
    /// When that token expired.
    pub user_token_expires_at: DateTime<Utc>,
    /// Every call, in order.
    pub entries: Vec<Entry>,
    /// One line: what happened.
    pub outcome: String,
    /// Whether the outcome is the one the scenario expects.
    pub as_expected: bool,
    /// Other moments worth marking (e.g. "identity server restarted").
    pub marks: Vec<(DateTime<Utc>, String)>,
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6
}

fn one_line(s: &str, max: usize) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

impl Timeline {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} ==", self.title);
        let _ = writeln!(
            out,
            "   +{:7.3}s  user token user({}) issued; expires at +{:.3}s",
            0.0,
            &self.user_token[..self.user_token.len().min(8)],
            secs(self.start, self.user_token_expires_at)
        );
        // Interleave the expiry line and other marks with the calls, in time order.
        let mut marks: Vec<(DateTime<Utc>, String)> = self.marks.clone();
        marks.push((
            self.user_token_expires_at,
            "---- user token expired ----".to_string(),
        ));
        marks.sort_by_key(|m| m.0);
        let mut marks = marks.into_iter().peekable();
        for e in &self.entries {
            while let Some((at, text)) = marks.next_if(|(at, _)| *at <= e.at) {
                let _ = writeln!(out, "   +{:7.3}s  {text}", secs(self.start, at));
            }
            let _ = writeln!(
                out,
                "   +{:7.3}s  {:<8} -> {:<8} {:<6} {:<52} {:<40} {}",
                secs(self.start, e.at),
                e.from,
                e.to,
                e.method,
                one_line(&e.path, 52),
                e.tokens_text(),
                e.outcome_text()
            );
            if let Some(r) = &e.recorded {
                let _ = writeln!(out, "              recorded by {r}");
            }
        }
        for (at, text) in marks {
            if at <= self.end {
                let _ = writeln!(out, "   +{:7.3}s  {text}", secs(self.start, at));
            }
        }
        let _ = writeln!(
            out,
            "   result: {}{}",
            self.outcome,
            if self.as_expected {
                " (as expected)"
            } else {
                " (NOT as expected)"
            }
        );
        out
    }
}

/// The text form of several runs.
pub fn render_text(timelines: &[Timeline]) -> String {
    timelines
        .iter()
        .map(Timeline::to_text)
        .collect::<Vec<_>>()
        .join("\n")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const LANES: [&str; 5] = ["user", "compute", "network", "volume", "image"];

/// One self-contained HTML page with a chart and a table per run.
pub fn render_html(title: &str, timelines: &[Timeline]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}\n\
         h1{{font-size:20px}} h2{{font-size:16px;margin-top:32px}}\n\
         .ok{{color:#1a7f37}} .bad{{color:#cf222e}}\n\
         table{{border-collapse:collapse;font-size:12px;margin-top:6px}}\n\
         td,th{{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;white-space:nowrap}}\n\
         code{{font-size:12px}} .legend span{{margin-right:16px}}\n\
         </style></head><body>\n<h1>{t}</h1>\n\
         <p class=\"legend\"><span>● user token only</span><span>◆ user + service token</span>\
         <span>■ service's own token (admin call)</span><span style=\"color:#1a7f37\">green: accepted</span>\
         <span style=\"color:#cf222e\">red: refused</span><span style=\"color:#cf222e\">┆ user token expiry</span></p>\n",
        t = esc(title)
    );
    for tl in timelines {
        let class = if tl.as_expected { "ok" } else { "bad" };
        let _ = write!(
            out,
            "<h2>{}</h2>\n<p class=\"{class}\">{}{}</p>\n",
            esc(&tl.title),
            esc(&tl.outcome),
            if tl.as_expected {
                " — as expected"
            } else {
                " — NOT as expected"
            }
        );
        out.push_str(&svg(tl));
        out.push_str(
            "\n<table><tr><th>t (s)</th><th>from → to</th><th>call</th><th>step</th><th>tokens</th><th>result</th><th>ms</th><th>the callee's record</th></tr>\n",
        );
        for e in &tl.entries {
            let class = if e.ok() { "ok" } else { "bad" };
            let _ = writeln!(
                out,
                "<tr><td>+{:.3}</td><td>{} → {}</td><td><code>{} {}</code></td><td>{}</td><td><code>{}</code></td><td class=\"{class}\">{}</td><td>{:.1}</td><td>{}</td></tr>",
                secs(tl.start, e.at),
                esc(&e.from),
                esc(&e.to),
                esc(&e.method),
                esc(&one_line(&e.path, 80)),
                esc(&e.step),
                esc(&e.tokens_text()),
                esc(&e.outcome_text()),
                e.duration_ms,
                esc(e.recorded.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// The chart's width, left margin, right margin (room for the label of a refusal at the very
/// end of a run), lane height and top margin, in pixels.
const W: f64 = 1100.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 190.0;
const LANE_H: f64 = 34.0;
const TOP: f64 = 24.0;

/// Where a timeline's moments go on its chart.
struct Chart {
    start: DateTime<Utc>,
    /// Seconds from left to right: the run or the user token's life, whichever is longer.
    span: f64,
    /// The chart's height.
    h: f64,
}

impl Chart {
    fn new(tl: &Timeline) -> Chart {
        let span = secs(tl.start, tl.end)
            .max(secs(tl.start, tl.user_token_expires_at))
            .max(0.1)
            * 1.03;
        Chart {
            start: tl.start,
            span,
            h: TOP + LANE_H * LANES.len() as f64 + 24.0,
        }
    }

    fn x(&self, t: DateTime<Utc>) -> f64 {
        LEFT + (secs(self.start, t) / self.span).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }
}

/// The middle of a callee's lane.
fn lane_y(name: &str) -> f64 {
    let i = LANES
        .iter()
        .position(|l| *l == name)
        .unwrap_or(LANES.len() - 1);
    TOP + LANE_H * i as f64 + LANE_H / 2.0
}

/// The chart: one lane per callee, time left to right, the expiry as a red dashed line.
fn svg(tl: &Timeline) -> String {
    let c = Chart::new(tl);
    let h = c.h;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" font-size=\"11\">"
    );
    svg_grid(&mut s, &c, tl);
    for e in &tl.entries {
        svg_entry(&mut s, &c, e);
    }
    s.push_str("</svg>");
    s
}

/// The lanes, the seconds ticks, the user token's expiry and the timeline's marks.
fn svg_grid(s: &mut String, c: &Chart, tl: &Timeline) {
    for lane in LANES {
        let y = lane_y(lane);
        let _ = write!(
            s,
            "<text x=\"8\" y=\"{:.1}\">{lane}</text><line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            y + 4.0,
            W - RIGHT
        );
    }
    // Seconds ticks.
    let step = if c.span > 20.0 {
        5.0
    } else if c.span > 6.0 {
        1.0
    } else {
        0.5
    };
    let mut t = 0.0;
    while t <= c.span {
        let px = LEFT + t / c.span * (W - LEFT - RIGHT);
        let _ = write!(
            s,
            "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#f0f0f0\"/><text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">{t:.1}s</text>",
            c.h - 20.0,
            c.h - 6.0
        );
        t += step;
    }
    let ex = c.x(tl.user_token_expires_at);
    let _ = write!(
        s,
        "<line x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"14\" fill=\"#cf222e\">user token expired</text>",
        TOP - 8.0,
        c.h - 20.0,
        ex + 4.0
    );
    for (at, text) in &tl.marks {
        let mx = c.x(*at);
        let _ = write!(
            s,
            "<line x1=\"{mx:.1}\" y1=\"{TOP}\" x2=\"{mx:.1}\" y2=\"{:.1}\" stroke=\"#8250df\" stroke-dasharray=\"2 2\"><title>{}</title></line>",
            c.h - 20.0,
            esc(text)
        );
    }
}

/// One call: a line from caller to callee, and a shape for the tokens it carried (circle: user
/// token only, diamond: with a service token, square: the service's own token).
fn svg_entry(s: &mut String, c: &Chart, e: &Entry) {
    let cx = c.x(e.at);
    let y1 = lane_y(&e.from);
    let y2 = lane_y(&e.to);
    let color = if e.ok() { "#1a7f37" } else { "#cf222e" };
    let tip = esc(&format!(
        "+{:.3}s {} → {}: {} {} [{}] {}",
        secs(c.start, e.at),
        e.from,
        e.to,
        e.method,
        e.path,
        e.tokens_text(),
        e.outcome_text()
    ));
    let _ = write!(
        s,
        "<g><title>{tip}</title><line x1=\"{cx:.1}\" y1=\"{y1:.1}\" x2=\"{cx:.1}\" y2=\"{y2:.1}\" stroke=\"{color}\" stroke-opacity=\"0.35\"/>"
    );
    let service = e.tokens.iter().any(|t| t.kind == TokenKind::Service);
    let own = e.tokens.iter().any(|t| t.kind == TokenKind::Own);
    if own {
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"{color}\"/>",
            cx - 4.5,
            y2 - 4.5
        );
    } else if service {
        let _ = write!(
            s,
            "<path d=\"M{cx:.1} {:.1} L{:.1} {y2:.1} L{cx:.1} {:.1} L{:.1} {y2:.1} Z\" fill=\"{color}\"/>",
            y2 - 6.0,
            cx + 6.0,
            y2 + 6.0,
            cx - 6.0
        );
    } else {
        let _ = write!(
            s,
            "<circle cx=\"{cx:.1}\" cy=\"{y2:.1}\" r=\"5\" fill=\"{color}\"/>"
        );
    }
    if !e.ok() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{}</text>",
            cx + 8.0,
            y2 - 6.0,
            esc(&e.outcome_text())
        );
    }
    s.push_str("</g>");
}
