//! The registry's current values as data, read back from its own text
//! exposition: for the self-metric envelopes sluice emits into its stream
//! and for `/v1/health`. (prometheus-client has no way to iterate a
//! family's label sets; the exposition is the one complete view, and its
//! format is ours to rely on.)

/// One sample: `sluice_ingress_envelopes_total{protocol="grpc"} 436`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric's name without the `sluice_` prefix and `_total` suffix
    /// (`ingress_envelopes`).
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// A counter (only grows); otherwise a gauge.
    pub counter: bool,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses an exposition into samples (lines it does not understand are
/// skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut counters: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, "counter")) = rest.split_once(' ') {
                counters.push(name);
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (full, labels) = match series.split_once('{') {
            Some((n, l)) => (n, parse_labels(l.strip_suffix('}').unwrap_or(l))),
            None => (series, Vec::new()),
        };
        let base = full.strip_suffix("_total").unwrap_or(full);
        let counter = counters.contains(&base) || counters.contains(&full);
        let name = base.strip_prefix("sluice_").unwrap_or(base).to_owned();
        out.push(Sample {
            name,
            labels,
            value,
            counter,
        });
    }
    out
}

/// `a="x",b="y"` (values may hold escaped quotes and backslashes).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').to_owned(), value));
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    #[test]
    fn reads_back_what_the_registry_holds() {
        let m = Metrics::default();
        m.ingress_counters("grpc").record(3, 30);
        m.count_drop("queue_full", 2);
        m.drain_counters("my-drain.1").sent.inc_by(5);
        m.subscribers.set(4);
        let samples = parse(&m.encode());
        let find = |name: &str| samples.iter().find(|s| s.name == name).cloned();
        let ingress = find("ingress_envelopes").expect("ingress");
        assert_eq!((ingress.value, ingress.counter), (3.0, true));
        assert_eq!(ingress.label("protocol"), Some("grpc"));
        assert_eq!(
            find("drops").expect("drops").label("reason"),
            Some("queue_full")
        );
        let subs = find("subscribers").expect("subscribers");
        assert_eq!((subs.value, subs.counter), (4.0, false));
        let drain = find("drain_sent").expect("drain");
        assert_eq!(drain.label("drain"), Some("my-drain.1"));
    }
}
