#!/usr/bin/env python3
"""Extracts template checks from the LogQL conformance corpus (real Loki answers).

For every recorded query with a `line_format` or templated `label_format` stage, and for every
entry Loki returned, this writes one record: the template, the label map the template saw, the
original log line (`__line__`, looked up in the dataset by stream and timestamp), the entry's
timestamp, and what Loki produced (the new line or label value, or the `__error_details__` of a
`TemplateFormatErr`).

The label map is recovered from Loki's answer: a stream's labels after the stage are the labels
before it plus what the stage wrote, so the written labels are replaced by their original values
(or removed). Labels Loki drops because they are empty come back as "".

Usage (from the repository root):
    python3 crates/fjord-template/tests/data/gen_conformance.py \
        ../shared/conformance > crates/fjord-template/tests/data/conformance_templates.jsonl
"""
import gzip
import json
import re
import sys


def go_unquote(lit):
    if lit.startswith('`'):
        return lit[1:-1]
    return json.loads(lit)


LIT = r'("(?:[^"\\]|\\.)*"|`[^`]*`)'


def main(root):
    dataset = [json.loads(l) for l in gzip.open(f"{root}/dataset.jsonl.gz", "rt")]
    by_ts = {}
    for stream in dataset:
        for e in stream["entries"]:
            meta = e[2] if len(e) > 2 else {}
            by_ts.setdefault(e[0], []).append((stream["labels"], e[1], meta))

    def source(out_labels, ts, ignore=()):
        for labels, line, meta in by_ts.get(ts, []):
            if all(out_labels.get(k) == v for k, v in labels.items() if k not in ignore):
                return labels, line, meta
        raise KeyError(ts)

    for raw in open(f"{root}/cases.jsonl"):
        case = json.loads(raw)
        query = case["params"].get("query", "")
        if case.get("status") != 200 or "_format" not in query:
            continue
        result = case["response"]["data"]["result"]
        if not isinstance(result, list) or case["response"]["data"]["resultType"] != "streams":
            continue
        m = re.search(r"\|\s*line_format\s+" + LIT, query)
        if m:
            tmpl = go_unquote(m.group(1))
            for s in result:
                for ts, out_line in s["values"]:
                    labels = dict(s["stream"])
                    _, line, _ = source(labels, ts)
                    rec = {"case": case["id"], "name": "line", "template": tmpl, "ts": int(ts), "line": line}
                    details = labels.get("__error_details__", "")
                    if labels.get("__error__") == "TemplateFormatErr" and details.startswith("template:"):
                        del labels["__error__"]
                        del labels["__error_details__"]
                        rec["want_err"] = details
                        assert out_line == line
                    else:
                        rec["want"] = out_line
                    rec["labels"] = labels
                    print(json.dumps(rec, ensure_ascii=False))
            continue
        m = re.search(r"\|\s*label_format\s+", query)
        if not m:
            continue
        # name=`tmpl` or name=src, comma separated; only templates are checked here.
        fmts, pos = [], m.end()
        while True:
            a = re.compile(r"\s*(\w+)\s*=\s*(" + LIT[1:-1] + r"|\w+)").match(query, pos)
            if not a:
                break
            if a.group(2)[0] in "\"`":
                fmts.append((a.group(1), a.group(2)))
            pos = a.end()
            c = re.compile(r"\s*,").match(query, pos)
            if not c:
                break
            pos = c.end()
        if not fmts:
            continue
        for s in result:
            for ts, out_line in s["values"]:
                out = dict(s["stream"])
                stream_labels, line, meta = source(out, ts, {d for d, _ in fmts})
                before = dict(out)
                for dst, _ in fmts:
                    before.pop(dst, None)
                    if dst in stream_labels:
                        before[dst] = stream_labels[dst]
                    elif dst in meta:
                        before[dst] = meta[dst]
                for dst, lit in fmts:
                    print(json.dumps({
                        "case": case["id"], "name": "label", "template": go_unquote(lit), "ts": int(ts),
                        "line": out_line, "labels": before, "want": out.get(dst, ""),
                    }, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/conformance")
