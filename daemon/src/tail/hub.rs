//! The event path's side of live tail. Runs inside the sink, on the pipeline's thread, so it
//! never waits: a line goes to each matching client's queue with `try_send`, or is skipped and
//! counted. With no client connected it costs one empty-channel check per line.
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::control;
use crate::{filter::Filter, output::EventLine};

/// One connected client, as the hub sees it.
pub struct Subscriber {
    pub filter: Filter,
    pub queue: mpsc::Sender<Arc<str>>,
    /// Lines skipped since the last notice reached the queue.
    pub skipped: u64,
}

impl Subscriber {
    /// Queues `line` (after a pending skip notice); false when the client is gone.
    fn deliver(&mut self, line: Arc<str>) -> bool {
        if self.skipped > 0 && !self.notify() {
            self.skipped += 1;
            return !self.queue.is_closed();
        }
        match self.queue.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.skipped += 1;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Tries to queue the skip notice; true once it is queued.
    fn notify(&mut self) -> bool {
        let notice: Arc<str> = control::skipped(self.skipped).into();
        if self.queue.try_send(notice).is_ok() {
            self.skipped = 0;
            true
        } else {
            false
        }
    }
}

pub struct TailHub {
    joins: mpsc::UnboundedReceiver<Subscriber>,
    subscribers: Vec<Subscriber>,
}

impl TailHub {
    /// The hub and the handle the server registers clients with.
    pub fn new() -> (TailHub, mpsc::UnboundedSender<Subscriber>) {
        let (tx, joins) = mpsc::unbounded_channel();
        (
            TailHub {
                joins,
                subscribers: Vec::new(),
            },
            tx,
        )
    }

    /// Offers `line` (already serialised as `json`) to every client whose filter takes it.
    /// Whether any client is connected (those that joined since are taken in first), so the
    /// sink can skip making a line's text for live tail when nobody listens.
    pub fn has_subscribers(&mut self) -> bool {
        while let Ok(subscriber) = self.joins.try_recv() {
            self.subscribers.push(subscriber);
        }
        !self.subscribers.is_empty()
    }

    pub fn publish(&mut self, line: &EventLine, json: &str) {
        if !self.has_subscribers() {
            return;
        }
        let shared: Arc<str> = json.into();
        // The JSON form filters look at, built once per line and only when some client filters.
        let mut value: Option<Option<Value>> = None;
        self.subscribers.retain_mut(|s| {
            if !s.filter.is_empty() {
                let value = value.get_or_insert_with(|| serde_json::to_value(line).ok());
                if !value.as_ref().is_some_and(|v| s.filter.matches(v)) {
                    return !s.queue.is_closed();
                }
            }
            s.deliver(shared.clone())
        });
    }

    /// Sends pending skip notices to clients that caught up (called on every tick, so a client
    /// learns about a gap even when no new line comes).
    pub fn flush_notices(&mut self) {
        self.subscribers.retain_mut(|s| {
            if s.skipped > 0 {
                s.notify();
            }
            !s.queue.is_closed()
        });
    }

    pub fn client_count(&self) -> usize {
        self.subscribers.len()
    }
}

/// The live tail as a tap of the daemon's output: a line's text is made only while some client
/// is connected.
impl crate::output::Tap for TailHub {
    fn wants(&mut self, _line: &EventLine) -> bool {
        self.has_subscribers()
    }

    fn take(&mut self, line: &EventLine, json: &str) {
        self.publish(line, json);
    }

    fn tick(&mut self) {
        self.flush_notices();
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::filter::FilterArgs;

    fn line(kind: &'static str) -> EventLine {
        super::super::test_line(kind)
    }

    #[test]
    fn a_full_client_is_skipped_counted_and_told_where_the_gap_is() {
        let (mut hub, joins) = TailHub::new();
        let (tx, mut rx) = mpsc::channel(2);
        let filter = Filter::compile(&FilterArgs {
            kind: vec!["exec".into()],
            ..Default::default()
        })
        .unwrap();
        joins
            .send(Subscriber {
                filter,
                queue: tx,
                skipped: 0,
            })
            .unwrap();
        for (i, kind) in ["exec", "loss", "exec", "exec", "exec"].iter().enumerate() {
            let l = line(kind);
            hub.publish(&l, &format!("{i}"));
        }
        // Queue of 2: lines 0 and 2 fit, 3 and 4 are skipped; 1 did not match.
        assert_eq!(rx.try_recv().unwrap().as_ref(), "0");
        assert_eq!(rx.try_recv().unwrap().as_ref(), "2");
        assert!(rx.try_recv().is_err());
        hub.flush_notices();
        assert_eq!(rx.try_recv().unwrap().as_ref(), control::skipped(2));
        hub.publish(&line("exec"), "5");
        assert_eq!(rx.try_recv().unwrap().as_ref(), "5");
        drop(rx);
        hub.publish(&line("exec"), "6");
        assert_eq!(hub.client_count(), 0, "a gone client is dropped");
    }
}
