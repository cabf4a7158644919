package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/grafana/loki/v3/pkg/logql/syntax"
)

type out struct {
	Q      string `json:"q"`
	Ok     bool   `json:"ok"`
	Str    string `json:"str,omitempty"`
	Pretty string `json:"pretty,omitempty"`
	Err    string `json:"err,omitempty"`
	Kind   string `json:"kind,omitempty"`
	Stage  string `json:"stage,omitempty"`
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for sc.Scan() {
		var q string
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		o := out{Q: q}
		func() {
			defer func() {
				if r := recover(); r != nil {
					o.Err = fmt.Sprintf("PANIC: %v", r)
				}
			}()
			e, err := syntax.ParseExpr(q)
			if err != nil {
				o.Err = err.Error()
				return
			}
			o.Ok = true
			o.Str = e.String()
			o.Pretty = syntax.Prettify(e)
			o.Kind = fmt.Sprintf("%T", e)
			switch x := e.(type) {
			case syntax.SampleExpr:
				x.Walk(func(n syntax.Expr) bool {
					if o.Stage != "" {
						return false
					}
					if r, ok := n.(*syntax.RangeAggregationExpr); ok {
						if _, err := r.Extractor(); err != nil {
							o.Stage = err.Error()
						}
					}
					return true
				})
			case syntax.LogSelectorExpr:
				if _, err := x.Pipeline(); err != nil {
					o.Stage = err.Error()
				}
			}
		}()
		enc.Encode(o)
	}
}
