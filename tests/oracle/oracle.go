// oracle renders test cases with Go's own text/template, the reference
// the C engine (core/src/render) is checked against byte for byte.
//
// Usage: oracle [-sprig] DEFAULT_DATA.json CASES.txt > EXPECTED.jsonl
//
// With -sprig the templates get Sprig v3.2.3's functions
// (sprig.TxtFuncMap() without expandenv), as the C engine's
// te_render_funcs_add_sprig registers them.
//
// CASES.txt holds cases as
//
//	=== name
//	template lines ...
//	--- data
//	{"json": "data"}
//
// The template is every line up to "--- data", the next "=== " header
// or the end, joined by "\n" (the last line's newline is not part of it;
// an empty last line adds one).  Without "--- data" the default data is
// used.  Each case gives one JSON line: {"name", "ok", "out"} with out
// base64 encoded in "out_b64" when it is not valid UTF-8.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/Masterminds/sprig"
)

type testCase struct {
	name, tmpl, data string
	hasData          bool
}

func parseCases(text string) ([]testCase, error) {
	var cases []testCase
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var cur *testCase
	var body []string
	inData := false
	flush := func() {
		if cur == nil {
			return
		}
		if inData {
			cur.data = strings.Join(body, "\n")
		} else {
			cur.tmpl = strings.Join(body, "\n")
		}
		cases = append(cases, *cur)
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "=== "):
			flush()
			cur = &testCase{name: l[4:]}
			body = nil
			inData = false
		case cur != nil && !inData && l == "--- data":
			cur.tmpl = strings.Join(body, "\n")
			cur.hasData = true
			body = nil
			inData = true
		case cur == nil:
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
				return nil, fmt.Errorf("text before the first case: %q", l)
			}
		default:
			body = append(body, l)
		}
	}
	flush()
	return cases, nil
}

// convert turns json.Number into int (no fraction or exponent, in
// range) or float64, and gives slices an exact capacity, as the C
// engine's value model has them.
func convert(v interface{}) (interface{}, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return int(i), nil
			}
		}
		return strconv.ParseFloat(s, 64)
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]interface{}:
		for k, e := range x {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	}
	return v, nil
}

func decode(text string) (interface{}, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convert(v)
}

type result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Out    string `json:"out,omitempty"`
	OutB64 []byte `json:"out_b64,omitempty"`
}

var funcs template.FuncMap

func render(c testCase, defaultData string) result {
	r := result{Name: c.name}
	dataText := defaultData
	if c.hasData {
		dataText = c.data
	}
	data, err := decode(dataText)
	if err != nil {
		fmt.Fprintf(os.Stderr, "case %s: bad data: %v\n", c.name, err)
		os.Exit(2)
	}
	var out string
	t, err := template.New(c.name).Funcs(funcs).Parse(c.tmpl)
	if err == nil {
		var b bytes.Buffer
		err = t.Execute(&b, data)
		out = b.String()
	}
	if err != nil {
		out = err.Error()
	} else {
		r.OK = true
	}
	if utf8.ValidString(out) {
		r.Out = out
	} else {
		r.OutB64 = []byte(out)
	}
	return r
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "-sprig" {
		funcs = sprig.TxtFuncMap()
		delete(funcs, "expandenv")
		args = args[1:]
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: oracle [-sprig] DEFAULT_DATA.json CASES.txt")
		os.Exit(2)
	}
	def, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	text, err := os.ReadFile(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cases, err := parseCases(string(text))
	if err != nil {
		fmt.Fprintln(os.Stderr, args[1]+":", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, c := range cases {
		if err := enc.Encode(render(c, string(def))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}
