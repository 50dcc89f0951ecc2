//! Where the demo writes, and its text progress bars: one line per running operation, redrawn in
//! place on a terminal, printed when a step changes otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A shared writer (stdout, or a buffer for tests).
#[derive(Clone)]
pub struct Output {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
    tty: bool,
}

/// A `Write` into a shared buffer (what [`Output::buffer`] returns).
#[derive(Clone, Default)]
pub struct SharedBuffer(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// What was written, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    /// The process's standard output.
    pub fn stdout() -> Output {
        Output {
            tty: std::io::stdout().is_terminal(),
            inner: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
        }
    }

    /// An output into memory, and the handle to read it.
    pub fn buffer() -> (Output, SharedBuffer) {
        let buf = SharedBuffer::default();
        (
            Output {
                tty: false,
                inner: Arc::new(Mutex::new(Box::new(buf.clone()))),
            },
            buf,
        )
    }

    /// Whether it is a terminal (bars are drawn only there).
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// Writes text as is.
    pub fn write_str(&self, s: &str) {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let _ = w.write_all(s.as_bytes());
        let _ = w.flush();
    }

    /// Writes one line.
    pub fn line(&self, s: &str) {
        self.write_str(&format!("{s}\n"));
    }
}

/// One operation's bar.
#[derive(Debug, Clone)]
struct Bar {
    label: String,
    progress: u8,
    step: String,
    done: Option<String>,
    printed_step: String,
}

/// The bars of the operations running now.
#[derive(Clone)]
pub struct ProgressBoard {
    bars: Arc<Mutex<Vec<Bar>>>,
    out: Output,
}

/// A handle on one bar.
#[derive(Clone)]
pub struct BarHandle {
    board: ProgressBoard,
    index: usize,
}

impl BarHandle {
    /// Moves the bar to `progress` percent at `step`.
    pub fn set(&self, progress: u8, step: &str) {
        let mut bars = self.board.lock();
        let b = &mut bars[self.index];
        b.progress = progress.min(100);
        b.step = step.to_string();
    }

    /// Ends the bar with its result.
    pub fn finish(&self, result: &str) {
        let mut bars = self.board.lock();
        let b = &mut bars[self.index];
        if b.done.is_none() {
            b.done = Some(result.to_string());
        }
    }
}

const WIDTH: usize = 24;

fn render(b: &Bar) -> String {
    let filled = (b.progress as usize * WIDTH) / 100;
    let bar: String = "#".repeat(filled) + &"-".repeat(WIDTH - filled);
    let tail = match &b.done {
        Some(r) => r.clone(),
        None => b.step.clone(),
    };
    format!("  [{bar}] {:>3}%  {:<52} {tail}", b.progress, b.label)
}

impl ProgressBoard {
    /// No bars yet, drawing on `out`.
    pub fn new(out: Output) -> ProgressBoard {
        ProgressBoard {
            bars: Arc::default(),
            out,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Bar>> {
        self.bars.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new bar named `label`.
    pub fn add(&self, label: &str) -> BarHandle {
        let mut bars = self.lock();
        bars.push(Bar {
            label: label.to_string(),
            progress: 0,
            step: "starting".into(),
            done: None,
            printed_step: String::new(),
        });
        BarHandle {
            board: self.clone(),
            index: bars.len() - 1,
        }
    }

    /// Draws until every bar is finished (then once more), every 100 ms.
    pub async fn draw_until_done(&self) {
        let mut drawn_lines = 0usize;
        loop {
            let (text, all_done, lines) = {
                let mut bars = self.lock();
                let all_done = bars.iter().all(|b| b.done.is_some());
                if self.out.is_tty() {
                    let mut text = String::new();
                    if drawn_lines > 0 {
                        text.push_str(&format!("\x1b[{drawn_lines}A"));
                    }
                    for b in bars.iter() {
                        text.push_str("\x1b[2K");
                        text.push_str(&render(b));
                        text.push('\n');
                    }
                    (text, all_done, bars.len())
                } else {
                    // Without a terminal: a line when a bar enters a step or finishes.
                    let mut text = String::new();
                    for b in bars.iter_mut() {
                        let key = b.done.clone().unwrap_or_else(|| b.step.clone());
                        if key != b.printed_step {
                            b.printed_step = key;
                            text.push_str(&render(b));
                            text.push('\n');
                        }
                    }
                    (text, all_done, 0)
                }
            };
            if !text.is_empty() {
                self.out.write_str(&text);
            }
            drawn_lines = lines;
            if all_done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
