//! Response bodies in Loki's JSON shapes.

use fjord_engine::{QueryStats, QueryValue};
use fjord_model::Labels;

use crate::json::{write_int_str, write_label_map, write_str, write_time_secs, write_value};

fn labels_iter(l: &Labels) -> impl Iterator<Item = (&str, &str)> {
    l.iter().map(|l| (l.name.as_str(), l.value.as_str()))
}

/// `{"status":"success","data":{"resultType":…,"result":…,"stats":…}}`.
/// `categorize` writes Loki's categorize-labels encoding for streams.
pub fn query_response(value: &QueryValue, stats: &QueryStats, categorize: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(br#"{"status":"success","data":{"resultType":""#);
    out.extend_from_slice(value.result_type().as_bytes());
    out.extend_from_slice(b"\",");
    let categorize = categorize && matches!(value, QueryValue::Streams(_));
    if categorize {
        out.extend_from_slice(br#""encodingFlags":["categorize-labels"],"#);
    }
    out.extend_from_slice(br#""result":"#);
    write_result(&mut out, value, categorize);
    out.extend_from_slice(br#","stats":"#);
    write_stats(&mut out, stats);
    out.extend_from_slice(b"}}");
    out
}

fn write_result(out: &mut Vec<u8>, value: &QueryValue, categorize: bool) {
    match value {
        QueryValue::Streams(streams) => {
            out.push(b'[');
            for (i, s) in streams.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"stream":"#);
                write_label_map(out, labels_iter(&s.labels));
                out.extend_from_slice(br#","values":["#);
                for (j, e) in s.entries.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    write_int_str(out, e.ts);
                    out.push(b',');
                    write_str(out, &e.line);
                    if categorize {
                        out.extend_from_slice(b",{");
                        let mut first = true;
                        for (key, labels) in [
                            ("structuredMetadata", &e.structured_metadata),
                            ("parsed", &e.parsed),
                        ] {
                            if labels.is_empty() {
                                continue;
                            }
                            if !first {
                                out.push(b',');
                            }
                            first = false;
                            write_str(out, key.as_bytes());
                            out.push(b':');
                            write_label_map(
                                out,
                                labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                            );
                        }
                        out.push(b'}');
                    }
                    out.push(b']');
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
        QueryValue::Matrix(series) => {
            out.push(b'[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                write_label_map(out, labels_iter(&s.labels));
                out.extend_from_slice(br#","values":["#);
                for (j, (t, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    write_time_secs(out, *t);
                    out.push(b',');
                    write_value(out, *v);
                    out.push(b']');
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
        QueryValue::Vector(samples) => {
            out.push(b'[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                write_label_map(out, labels_iter(&s.labels));
                out.extend_from_slice(br#","value":["#);
                write_time_secs(out, s.ts);
                out.push(b',');
                write_value(out, s.value);
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
        QueryValue::Scalar { ts, value } => {
            // Loki renders a scalar's time in milliseconds (an observed quirk kept for
            // compatibility).
            out.push(b'[');
            out.extend_from_slice(ts.div_euclid(1_000_000).to_string().as_bytes());
            out.push(b',');
            write_value(out, *value);
            out.push(b']');
        }
    }
}

/// Loki's `stats` object; fields Fjord has no figure for are zero (Grafana only displays them).
fn write_stats(out: &mut Vec<u8>, s: &QueryStats) {
    let secs = s.exec_time_secs.max(1e-9);
    let zero_cache = r#"{"entriesFound":0,"entriesRequested":0,"entriesStored":0,"bytesReceived":0,"bytesSent":0,"requests":0,"downloadTime":0,"queryLengthServed":0}"#;
    let chunk = format!(
        r#"{{"headChunkBytes":0,"headChunkLines":0,"decompressedBytes":{},"decompressedLines":{},"compressedBytes":{},"totalDuplicates":{},"postFilterLines":{},"headChunkStructuredMetadataBytes":0,"decompressedStructuredMetadataBytes":0}}"#,
        s.decompressed_bytes,
        s.lines_processed,
        s.compressed_bytes,
        s.duplicates,
        s.post_filter_lines
    );
    let text = format!(
        concat!(
            r#"{{"summary":{{"bytesProcessedPerSecond":{},"linesProcessedPerSecond":{},"totalBytesProcessed":{},"totalLinesProcessed":{},"#,
            r#""execTime":{},"queueTime":0,"subqueries":0,"totalEntriesReturned":{},"splits":0,"shards":0,"totalPostFilterLines":{},"#,
            r#""totalStructuredMetadataBytesProcessed":0}},"#,
            r#""querier":{{"store":{{"totalChunksRef":{},"totalChunksDownloaded":{},"chunksDownloadTime":0,"queryReferencedStructuredMetadata":false,"chunk":{},"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0}}}},"#,
            r#""ingester":{{"totalReached":0,"totalChunksMatched":0,"totalBatches":0,"totalLinesSent":0,"store":{{"totalChunksRef":0,"totalChunksDownloaded":0,"chunksDownloadTime":0,"queryReferencedStructuredMetadata":false,"chunk":{{"headChunkBytes":0,"headChunkLines":0,"decompressedBytes":0,"decompressedLines":0,"compressedBytes":0,"totalDuplicates":0,"postFilterLines":0,"headChunkStructuredMetadataBytes":0,"decompressedStructuredMetadataBytes":0}},"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0}}}},"#,
            r#""cache":{{"chunk":{z},"index":{z},"result":{z},"statsResult":{z},"volumeResult":{z},"seriesResult":{z},"labelResult":{z},"instantMetricResult":{z}}},"#,
            r#""index":{{"totalChunks":{},"postFilterChunks":{},"shardsDuration":0,"usedBloomFilters":false}}}}"#
        ),
        (s.bytes_processed as f64 / secs) as u64,
        (s.lines_processed as f64 / secs) as u64,
        s.bytes_processed,
        s.lines_processed,
        s.exec_time_secs,
        s.entries_returned,
        s.post_filter_lines,
        s.chunks_ref,
        s.chunks_downloaded,
        chunk,
        s.chunks_ref,
        s.chunks_ref,
        z = zero_cache,
    );
    out.extend_from_slice(text.as_bytes());
}

/// Volume results in Prometheus shape: a vector when every series has one bucket, else a
/// matrix; series ordered by their first value (descending), then by labels, as Loki orders
/// them.
pub fn volume_response(buckets: &[(i64, Vec<(Labels, u64)>)]) -> Vec<u8> {
    let mut series: std::collections::BTreeMap<String, (Labels, Vec<(i64, u64)>)> =
        std::collections::BTreeMap::new();
    for (t, vols) in buckets {
        for (l, v) in vols {
            series
                .entry(l.to_string())
                .or_insert_with(|| (l.clone(), Vec::new()))
                .1
                .push((*t, *v));
        }
    }
    type Row = (String, Labels, Vec<(i64, u64)>);
    let mut rows: Vec<Row> = series.into_iter().map(|(k, (l, p))| (k, l, p)).collect();
    rows.sort_by(|a, b| b.2[0].1.cmp(&a.2[0].1).then_with(|| a.0.cmp(&b.0)));
    let matrix = rows.iter().any(|r| r.2.len() > 1);
    let mut out = br#"{"status":"success","data":{"resultType":""#.to_vec();
    out.extend_from_slice(if matrix { b"matrix" } else { b"vector" });
    out.extend_from_slice(br#"","result":["#);
    for (i, (_, labels, points)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":"#);
        write_label_map(&mut out, labels_iter(labels));
        out.extend_from_slice(if matrix {
            br#","values":["# as &[u8]
        } else {
            br#","value":"#
        });
        for (j, (t, v)) in points.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'[');
            write_time_secs(&mut out, *t);
            out.push(b',');
            write_str(&mut out, v.to_string().as_bytes());
            out.push(b']');
        }
        if matrix {
            out.push(b']');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}}");
    out
}

/// `{"status":"success","data":[…]}`; with no values `data` is omitted, as Loki does.
pub fn string_list(values: &[String]) -> Vec<u8> {
    if values.is_empty() {
        return br#"{"status":"success"}"#.to_vec();
    }
    let mut out = br#"{"status":"success","data":["#.to_vec();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, v.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// `{"status":"success","data":[{…},…]}`; `data` is always an array.
pub fn series_list(series: &[Labels]) -> Vec<u8> {
    let mut out = br#"{"status":"success","data":["#.to_vec();
    for (i, l) in series.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_label_map(&mut out, labels_iter(l));
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use fjord_engine::{LogEntry, Sample, Series, StreamResult};
    use fjord_model::Label;

    fn parse(b: &[u8]) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn streams_in_both_encodings() {
        let v = QueryValue::Streams(vec![StreamResult {
            labels: Labels::from_pairs([("app", "a")]),
            entries: vec![LogEntry {
                ts: 5,
                line: Bytes::from_static(b"<hi>"),
                structured_metadata: vec![Label::new("trace_id", "t")],
                parsed: vec![],
            }],
        }]);
        let j = parse(&query_response(&v, &QueryStats::default(), false));
        assert_eq!(
            j["data"]["result"][0]["values"][0],
            serde_json::json!(["5", "<hi>"])
        );
        assert!(j["data"]["stats"]["summary"]["execTime"].is_number());
        let j = parse(&query_response(&v, &QueryStats::default(), true));
        assert_eq!(
            j["data"]["encodingFlags"],
            serde_json::json!(["categorize-labels"])
        );
        assert_eq!(
            j["data"]["result"][0]["values"][0][2],
            serde_json::json!({"structuredMetadata": {"trace_id": "t"}})
        );
    }

    #[test]
    fn metric_shapes() {
        let m = QueryValue::Matrix(vec![Series {
            labels: Labels::empty(),
            points: vec![(1_000_000_000_000, 1.5), (1_000_500_000_000, f64::NAN)],
        }]);
        let j = parse(&query_response(&m, &QueryStats::default(), false));
        assert_eq!(
            j["data"]["result"][0]["values"],
            serde_json::json!([[1000, "1.5"], [1000.5, "NaN"]])
        );
        let v = QueryValue::Vector(vec![Sample {
            labels: Labels::empty(),
            ts: 4_000_000_000_000_000_000,
            value: 2.0,
        }]);
        let j = parse(&query_response(&v, &QueryStats::default(), false));
        assert_eq!(
            j["data"]["result"][0],
            serde_json::json!({"metric": {}, "value": [4000000000u64, "2"]})
        );
        let s = QueryValue::Scalar {
            ts: 1_705_316_400_000_000_000,
            value: 512.0,
        };
        let j = parse(&query_response(&s, &QueryStats::default(), false));
        assert_eq!(
            j["data"]["result"],
            serde_json::json!([1705316400000u64, "512"])
        );
    }

    #[test]
    fn lists() {
        assert_eq!(string_list(&[]), br#"{"status":"success"}"#);
        assert_eq!(
            parse(&string_list(&["a".into()]))["data"],
            serde_json::json!(["a"])
        );
        assert_eq!(parse(&series_list(&[]))["data"], serde_json::json!([]));
    }
}
