//! Streaming reader of Apple Health `export.xml`: `<Record>`s (with their `<MetadataEntry>`s) and
//! `<Correlation>`s (with their child `<Record>`s), one at a time, in document order. Everything
//! else (`<Workout>`, `<ActivitySummary>`, `<Me>`, the DTD…) is read and checked for
//! well-formedness but not returned. Memory is one element at a time: a correlation holds its few
//! children, nothing else is kept.
use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use std::io::{BufRead, Read};

/// The three metadata keys the database uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub sync_id: Option<String>,
    pub sync_version: Option<String>,
    pub tz: Option<String>,
}

impl Metadata {
    /// Remembers `key`=`value` if it is one of the keys we keep.
    fn take(&mut self, key: &str, value: &str) {
        let slot = match key {
            "HKMetadataKeySyncIdentifier" => &mut self.sync_id,
            "HKMetadataKeySyncVersion" => &mut self.sync_version,
            "HKTimeZone" => &mut self.tz,
            _ => return,
        };
        *slot = Some(value.to_string());
    }
}

/// One `<Record>`, attribute values unescaped but otherwise as in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The `type` attribute ("" when absent).
    pub kind: String,
    pub unit: Option<String>,
    /// `value`, or the legacy (iOS 8) `average` when there is no `value`.
    pub value: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// `sourceName`, or the legacy `source`.
    pub source: Option<String>,
    pub meta: Metadata,
}

/// One `<Correlation>` with its child records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correlation {
    pub kind: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub source: Option<String>,
    pub meta: Metadata,
    pub children: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A `<Record>` that is not inside a `<Correlation>`.
    Record(Record),
    Correlation(Correlation),
}

/// The file is not well-formed: `offset` is the byte where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub offset: u64,
    pub message: String,
}

/// 1-based line and column (in characters) of byte `offset` of the stream.
pub fn line_col(mut r: impl Read, offset: u64) -> std::io::Result<(u64, u64)> {
    let (mut line, mut col, mut pos) = (1u64, 1u64, 0u64);
    let mut buf = [0u8; 64 * 1024];
    while pos < offset {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let take = usize::try_from((offset - pos).min(n as u64)).unwrap_or(n);
        for &b in &buf[..take] {
            if b == b'\n' {
                line += 1;
                col = 1;
            } else if b & 0xC0 != 0x80 {
                // Not a UTF-8 continuation byte: a new character starts here.
                col += 1;
            }
        }
        pos += take as u64;
    }
    Ok((line, col))
}

pub struct Parser<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    record: Option<Record>,
    correlation: Option<Correlation>,
    /// Depth of elements opened inside the current `<Record>` (e.g. `HeartRateVariabilityMetadataList`).
    inner_depth: usize,
    /// Names of the open elements (a handful), to tell a truncated file.
    open: Vec<String>,
    seen_element: bool,
    done: bool,
}

impl<R: BufRead> Parser<R> {
    pub fn new(input: R) -> Self {
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Parser {
            reader,
            buf: Vec::with_capacity(4096),
            record: None,
            correlation: None,
            inner_depth: 0,
            open: Vec::new(),
            seen_element: false,
            done: false,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    /// The next record or correlation, `None` at the end of the document.
    pub fn next_item(&mut self) -> Result<Option<Item>, XmlError> {
        if self.done {
            return Ok(None);
        }
        let next = self.read_item();
        if next.is_err() {
            self.done = true;
        }
        next
    }

    fn read_item(&mut self) -> Result<Option<Item>, XmlError> {
        loop {
            self.buf.clear();
            let tag_start = self.reader.buffer_position();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(e) => return Err(XmlError { offset: self.reader.error_position(), message: e.to_string() }),
            };
            match event {
                Event::Start(e) => {
                    let attrs = read_attributes(&e, tag_start)?;
                    self.seen_element = true;
                    self.open.push(e.name().as_ref().to_string());
                    match e.name().as_ref() {
                        "Record" if self.record.is_none() => {
                            self.record = Some(record_from(attrs));
                            self.inner_depth = 0;
                        }
                        "Correlation" if self.record.is_none() && self.correlation.is_none() => {
                            self.correlation = Some(correlation_from(attrs));
                        }
                        "MetadataEntry" => self.metadata(&attrs),
                        _ => {
                            if self.record.is_some() {
                                self.inner_depth += 1;
                            }
                        }
                    }
                }
                Event::Empty(e) => {
                    let attrs = read_attributes(&e, tag_start)?;
                    self.seen_element = true;
                    match e.name().as_ref() {
                        "Record" if self.record.is_none() => {
                            if let Some(item) = self.finish_record(record_from(attrs)) {
                                return Ok(Some(item));
                            }
                        }
                        "Correlation" if self.record.is_none() && self.correlation.is_none() => {
                            return Ok(Some(Item::Correlation(correlation_from(attrs))));
                        }
                        "MetadataEntry" => self.metadata(&attrs),
                        _ => {}
                    }
                }
                Event::End(e) => {
                    self.open.pop();
                    match e.name().as_ref() {
                        "Record" if self.record.is_some() && self.inner_depth == 0 => {
                            let record = self.record.take().unwrap_or_default();
                            if let Some(item) = self.finish_record(record) {
                                return Ok(Some(item));
                            }
                        }
                        "Correlation" if self.record.is_none() && self.correlation.is_some() => {
                            return Ok(self.correlation.take().map(Item::Correlation));
                        }
                        _ => {
                            if self.record.is_some() {
                                self.inner_depth = self.inner_depth.saturating_sub(1);
                            }
                        }
                    }
                }
                Event::Eof => {
                    let offset = self.reader.buffer_position();
                    if let Some(inner) = self.open.last() {
                        return Err(XmlError {
                            offset,
                            message: format!("the file ends inside <{inner}> (truncated?)"),
                        });
                    }
                    if !self.seen_element {
                        return Err(XmlError {
                            offset,
                            message: "no XML element in the file (is it an export.xml?)".into(),
                        });
                    }
                    self.done = true;
                    return Ok(None);
                }
                // Text, comments, CDATA, the XML declaration, the DTD, processing instructions.
                _ => {}
            }
        }
    }

    /// A `<MetadataEntry>` belongs to the open record, else to the open correlation, else (a
    /// workout's, say) to nothing we keep.
    fn metadata(&mut self, attrs: &[(String, String)]) {
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(key), Some(value)) = (get("key"), get("value")) else { return };
        if let Some(r) = self.record.as_mut() {
            // Only the record's own entries, not those of elements nested deeper in it.
            if self.inner_depth == 0 {
                r.meta.take(key, value);
            }
        } else if let Some(c) = self.correlation.as_mut() {
            c.meta.take(key, value);
        }
    }

    /// A complete record: a correlation's child, or a top-level item.
    fn finish_record(&mut self, record: Record) -> Option<Item> {
        match self.correlation.as_mut() {
            Some(c) => {
                c.children.push(record);
                None
            }
            None => Some(Item::Record(record)),
        }
    }
}

/// All attributes, unescaped. Reading every attribute of every tag is what finds a malformed one
/// (quick-xml checks attributes only when they are read).
fn read_attributes(e: &BytesStart<'_>, tag_start: u64) -> Result<Vec<(String, String)>, XmlError> {
    let mut out = Vec::new();
    let attrs: Attributes<'_> = e.attributes();
    for a in attrs {
        let a = a.map_err(|err| {
            let (rel, what) = describe_attr_error(&err);
            // AttrError positions count from the first byte after `<`.
            XmlError {
                offset: tag_start + 1 + rel as u64,
                message: format!("malformed attribute in <{}>: {what}", e.name().as_ref()),
            }
        })?;
        let key = a.key.as_ref().to_string();
        let value = a.normalized_value(XmlVersion::Implicit1_0).map_err(|err| XmlError {
            offset: tag_start,
            message: format!("bad value of attribute {key} in <{}>: {err}", e.name().as_ref()),
        })?;
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

/// Where (relative to the tag) and what, without quick-xml's relative "position N".
fn describe_attr_error(e: &quick_xml::events::attributes::AttrError) -> (usize, String) {
    use quick_xml::events::attributes::AttrError::*;
    match e {
        ExpectedEq(p) => (*p, "an attribute name must be followed by `=` (a name containing spaces?)".into()),
        ExpectedValue(p) => (*p, "`=` must be followed by a quoted value".into()),
        UnquotedValue(p) => (*p, "attribute value is not quoted".into()),
        ExpectedQuote(p, q) => (*p, format!("attribute value is not closed with {}", char::from(*q))),
        Duplicated(p, _) => (*p, "duplicate attribute".into()),
    }
}

fn take(attrs: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let i = attrs.iter().position(|(k, _)| k == key)?;
    Some(attrs.swap_remove(i).1)
}

fn record_from(mut attrs: Vec<(String, String)>) -> Record {
    let value = take(&mut attrs, "value").or_else(|| take(&mut attrs, "average"));
    let source = take(&mut attrs, "sourceName").or_else(|| take(&mut attrs, "source"));
    let mut r = Record {
        kind: take(&mut attrs, "type").unwrap_or_default(),
        unit: take(&mut attrs, "unit"),
        value,
        start: take(&mut attrs, "startDate"),
        end: take(&mut attrs, "endDate"),
        source,
        meta: Metadata::default(),
    };
    // Legacy (iOS 8) exports wrote metadata as attributes of the record.
    for (k, v) in &attrs {
        r.meta.take(k, v);
    }
    r
}

fn correlation_from(mut attrs: Vec<(String, String)>) -> Correlation {
    let source = take(&mut attrs, "sourceName").or_else(|| take(&mut attrs, "source"));
    let mut c = Correlation {
        kind: take(&mut attrs, "type").unwrap_or_default(),
        start: take(&mut attrs, "startDate"),
        end: take(&mut attrs, "endDate"),
        source,
        meta: Metadata::default(),
        children: Vec::new(),
    };
    for (k, v) in &attrs {
        c.meta.take(k, v);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(xml: &str) -> Vec<Item> {
        let mut p = Parser::new(xml.as_bytes());
        let mut out = Vec::new();
        while let Some(i) = p.next_item().unwrap() {
            out.push(i);
        }
        out
    }

    fn error(xml: &str) -> (u64, u64, String) {
        let mut p = Parser::new(xml.as_bytes());
        loop {
            match p.next_item() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error in {xml}"),
                Err(e) => {
                    let (l, c) = line_col(xml.as_bytes(), e.offset).unwrap();
                    return (l, c, e.message);
                }
            }
        }
    }

    #[test]
    fn record_with_metadata_and_nested_lists() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout)*)>
<!ATTLIST Record
  type CDATA #REQUIRED
>
]>
<HealthData locale="en_US">
 <ExportDate value="2020-09-13 08:11:54 +0900"/>
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="W" unit="ms" startDate="a" endDate="b" value="40.5">
  <MetadataEntry key="HKTimeZone" value="Europe/Paris"/>
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="60" time="00:20:37,80"/>
   <MetadataEntry key="HKTimeZone" value="not mine"/>
  </HeartRateVariabilityMetadataList>
  <MetadataEntry key="HKMetadataKeySyncIdentifier" value="X-1"/>
  <MetadataEntry key="HKMetadataKeySyncVersion" value="2"/>
 </Record>
 <Workout workoutActivityType="HKWorkoutActivityTypeRunning" sourceName="W" startDate="a" endDate="b">
  <MetadataEntry key="HKTimeZone" value="Workout/Zone"/>
 </Workout>
</HealthData>"#;
        let got = items(xml);
        assert_eq!(
            got,
            vec![Item::Record(Record {
                kind: "HKQuantityTypeIdentifierHeartRateVariabilitySDNN".into(),
                unit: Some("ms".into()),
                value: Some("40.5".into()),
                start: Some("a".into()),
                end: Some("b".into()),
                source: Some("W".into()),
                meta: Metadata {
                    sync_id: Some("X-1".into()),
                    sync_version: Some("2".into()),
                    tz: Some("Europe/Paris".into())
                },
            })]
        );
    }

    #[test]
    fn correlation_collects_children_and_its_own_metadata() {
        let xml = r#"<HealthData>
<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="S" startDate="s" endDate="e">
 <MetadataEntry key="HKMetadataKeySyncIdentifier" value="corr-1"/>
 <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="S" unit="mmHg" startDate="s" endDate="e" value="74"/>
 <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="S" unit="mmHg" startDate="s" endDate="e" value="125">
  <MetadataEntry key="HKMetadataKeySyncIdentifier" value="child"/>
 </Record>
</Correlation>
<Correlation type="HKCorrelationTypeIdentifierFood" sourceName="S" startDate="s" endDate="e"/>
<Record type="T" startDate="s" endDate="e" sourceName="S"/>
</HealthData>"#;
        let got = items(xml);
        assert_eq!(got.len(), 3);
        let Item::Correlation(c) = &got[0] else { panic!() };
        assert_eq!(c.kind, "HKCorrelationTypeIdentifierBloodPressure");
        assert_eq!(c.meta.sync_id.as_deref(), Some("corr-1"));
        assert_eq!(c.children.len(), 2);
        assert_eq!(c.children[1].meta.sync_id.as_deref(), Some("child"));
        assert_eq!(c.children[0].value.as_deref(), Some("74"));
        let Item::Correlation(food) = &got[1] else { panic!() };
        assert!(food.children.is_empty());
        assert!(matches!(&got[2], Item::Record(r) if r.kind == "T"));
    }

    #[test]
    fn escapes_and_character_references_are_resolved() {
        let xml = r#"<HealthData><Record type="HKQuantityTypeIdentifierBloodGlucose" sourceName="Jonathan&#8217;s &amp; Apple&#160;Watch" unit="mmol&lt;180.1558800000541&gt;/L" startDate="s" endDate="e" value="5.4"/>
<Record type="HKQuantityTypeIdentifierVO2Max" sourceName="x" unit="mL/min&#183;kg" startDate="s" endDate="e" value="44.26"/></HealthData>"#;
        let got = items(xml);
        let Item::Record(r) = &got[0] else { panic!() };
        assert_eq!(r.unit.as_deref(), Some("mmol<180.1558800000541>/L"));
        assert_eq!(r.source.as_deref(), Some("Jonathan\u{2019}s & Apple\u{a0}Watch"));
        let Item::Record(r) = &got[1] else { panic!() };
        assert_eq!(r.unit.as_deref(), Some("mL/min\u{b7}kg"));
    }

    #[test]
    fn legacy_source_average_and_attribute_metadata() {
        let xml = r#"<HealthData locale="en_DE">
 <Record type="HKQuantityTypeIdentifierHeartRate" source="Sleep Cycle" unit="count/s" startDate="20150531161900+0100" endDate="20150601161900+0100" min="1.0" max="1.2" average="1.11667" recordCount="1"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" source="UP" unit="" startDate="20141202014500+0200" endDate="20141202102500+0200" HKTimeZone="Europe/Berlin" value="1"/>
</HealthData>"#;
        let got = items(xml);
        let Item::Record(hr) = &got[0] else { panic!() };
        assert_eq!(hr.value.as_deref(), Some("1.11667"));
        assert_eq!(hr.source.as_deref(), Some("Sleep Cycle"));
        let Item::Record(sleep) = &got[1] else { panic!() };
        assert_eq!(sleep.unit.as_deref(), Some(""));
        assert_eq!(sleep.value.as_deref(), Some("1"));
        assert_eq!(sleep.meta.tz.as_deref(), Some("Europe/Berlin"));
    }

    #[test]
    fn value_wins_over_average() {
        let xml = r#"<HealthData><Record type="T" average="1" value="2" startDate="s" endDate="e"/></HealthData>"#;
        let Item::Record(r) = &items(xml)[0] else { panic!() };
        assert_eq!(r.value.as_deref(), Some("2"));
    }

    #[test]
    fn malformed_attribute_is_located() {
        let xml = "<HealthData>\n <Record type=\"T\" source=\"W\" Health Mate App Version=\"2.6.2\"/>\n</HealthData>";
        let (line, col, msg) = error(xml);
        assert_eq!(line, 2);
        // Points into the attribute list of the record (after `Health`), not at the tag start.
        assert!(col > 30, "column {col}: {msg}");
        assert!(msg.contains("Record"), "{msg}");
    }

    #[test]
    fn mismatched_end_tag_and_truncation_are_errors() {
        let (line, _, msg) = error("<HealthData>\n<Record type=\"T\">\n</Correlation>\n</HealthData>");
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("Correlation"), "{msg}");
        let (_, _, msg) = error("<HealthData>\n<Record type=\"T\" value=\"1");
        assert!(!msg.is_empty());
        let (line, _, msg) = error("<HealthData>\n<Record type=\"T\"/>\n<Correlation type=\"C\">\n");
        assert_eq!(line, 4);
        assert_eq!(msg, "the file ends inside <Correlation> (truncated?)");
        let (_, _, msg) = error("");
        assert!(msg.starts_with("no XML element"), "{msg}");
        let (_, _, msg) = error("{\"json\": true}");
        assert!(msg.starts_with("no XML element"), "{msg}");
        let (_, _, msg) = error("<HealthData><Record type=\"T\" unit=\"&bogus;\"/></HealthData>");
        assert!(msg.contains("unit"), "{msg}");
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "ab\n🕛é<x";
        let offset = text.find('<').unwrap() as u64;
        assert_eq!(line_col(text.as_bytes(), offset).unwrap(), (2, 3));
        assert_eq!(line_col(text.as_bytes(), 0).unwrap(), (1, 1));
    }
}
