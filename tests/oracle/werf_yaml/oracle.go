// werf_yaml renders werf's `toYaml (fromYaml TEXT)` with gopkg.in/yaml.v2
// itself, the reference tagexport's fromYaml/toYaml (core/src/werfcfg_yaml.c)
// is compared with by tests/integration/t61-werf-yaml-oracle.sh.
//
// Usage: werf_yaml CASE.yaml... > OUT.txt
//
// For each file, in the order given: "=== NAME\n", then yaml.Unmarshal
// into map[string]interface{} (werf's fromYaml) and yaml.Marshal with the
// trailing newline removed (werf's toYaml), then "\n".
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v2"
)

func main() {
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		m := map[string]interface{}{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			fmt.Fprintln(os.Stderr, path, err)
			os.Exit(1)
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			fmt.Fprintln(os.Stderr, path, err)
			os.Exit(1)
		}
		fmt.Printf("=== cases/%s\n%s\n", filepath.Base(path),
			strings.TrimSuffix(string(out), "\n"))
	}
}
