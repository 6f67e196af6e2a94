//! The two streaming passes, without the database: pass 1 collects the children of the
//! correlations that are sent; pass 2 turns the file into batches of ingest elements and counts
//! every top-level item. The caller sends each batch and hands the answers back.
use crate::element::{Classifier, CorrelationKeys, Disposition};
use crate::report::Report;
use crate::xml::{Item, Parser, XmlError};
use serde_json::Value;
use std::io::BufRead;

/// Pass 1. `progress` is called now and then with the bytes and top-level items read so far.
pub fn scan_correlations<R: BufRead>(
    input: R,
    mut progress: impl FnMut(u64, u64),
) -> Result<CorrelationKeys, XmlError> {
    let mut parser = Parser::new(input);
    let mut keys = CorrelationKeys::default();
    let mut n = 0u64;
    while let Some(item) = parser.next_item()? {
        keys.observe(&item);
        n += 1;
        if n.is_multiple_of(4096) {
            progress(parser.position(), n);
        }
    }
    progress(parser.position(), n);
    Ok(keys)
}

/// One batch: the type each element is counted under, and the elements, in order (`ord` = index + 1).
#[derive(Debug, Default)]
pub struct Batch {
    pub kinds: Vec<String>,
    pub elements: Vec<Value>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The elements as one JSON array, for `health.ingest` (moved out; the kinds stay for the answers).
    pub fn take_json(&mut self) -> Value {
        Value::Array(std::mem::take(&mut self.elements))
    }
}

/// Pass 2.
pub struct Batcher<'a, R: BufRead> {
    parser: Parser<R>,
    classifier: Classifier<'a>,
    batch_size: usize,
    pub report: Report,
    /// Top-level items read so far.
    pub items: u64,
}

impl<'a, R: BufRead> Batcher<'a, R> {
    pub fn new(input: R, classifier: Classifier<'a>, batch_size: usize) -> Self {
        Batcher {
            parser: Parser::new(input),
            classifier,
            batch_size: batch_size.max(1),
            report: Report::default(),
            items: 0,
        }
    }

    pub fn position(&self) -> u64 {
        self.parser.position()
    }

    /// The next full batch (the last one may be shorter); `None` when the file is done.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, XmlError> {
        let mut batch = Batch::default();
        while batch.len() < self.batch_size {
            let Some(item) = self.parser.next_item()? else { break };
            self.items += 1;
            if let Item::Correlation(c) = &item {
                for child in &c.children {
                    self.report.nested_child(&child.kind);
                }
            }
            let (kind, d) = self.classifier.classify(&item);
            self.report.item(kind, &d);
            if let Disposition::Send(e) = d {
                batch.kinds.push(kind.to_string());
                batch.elements.push(e);
            }
        }
        Ok(if batch.is_empty() { None } else { Some(batch) })
    }

    /// The answers of `health.ingest` for `batch`: (ord, status, error). Elements without an
    /// answer are counted as such; answers for ords that were not sent are ignored.
    pub fn apply(&mut self, batch: &Batch, answers: &[(i32, String, Option<String>)]) {
        apply_answers(&mut self.report, batch, answers);
    }
}

pub fn apply_answers(report: &mut Report, batch: &Batch, answers: &[(i32, String, Option<String>)]) {
    let mut answered = vec![false; batch.len()];
    for (ord, status, error) in answers {
        let Some(i) = usize::try_from(*ord).ok().and_then(|o| o.checked_sub(1)).filter(|&i| i < batch.len()) else {
            continue;
        };
        if std::mem::replace(&mut answered[i], true) {
            continue;
        }
        report.outcome(&batch.kinds[i], status, error.as_deref());
    }
    for (i, done) in answered.iter().enumerate() {
        if !done {
            report.no_outcome(&batch.kinds[i]);
        }
    }
    report.batches += 1;
    report.sent += batch.len() as u64;
}
