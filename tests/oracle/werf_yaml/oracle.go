// werf_yaml renders werf's `toYaml (fromYaml TEXT)` with gopkg.in/yaml.v2
// itself, the reference tagexport's fromYaml/toYaml (core/src/werfcfg_yaml.c)
// is compared with by tests/integration/t61-werf-yaml-oracle.sh.
//
// Usage: werf_yaml CASE.yaml... > OUT.txt
//
//	werf_yaml -graph GRAPH.json > OUT.txt
//
// For each file, in the order given: "=== NAME\n", then yaml.Unmarshal
// into map[string]interface{} (werf's fromYaml) and yaml.Marshal with the
// trailing newline removed (werf's toYaml), then "\n".
//
// With -graph: the JSON list of images and what they depend on, printed
// as `werf config graph` prints its list (the same struct and yaml tags as
// werf's pkg/config imageGraph, yaml.Marshal, TrimSpace, Println).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v2"
)

type dependsOn struct {
	From         string   `json:"from" yaml:"from,omitempty"`
	Imports      []string `json:"import" yaml:"import,omitempty"`
	Dependencies []string `json:"dependencies" yaml:"dependencies,omitempty"`
}

type imageGraph struct {
	ImageName string    `json:"image" yaml:"image,omitempty"`
	DependsOn dependsOn `json:"dependsOn" yaml:"dependsOn,omitempty"`
}

func graph(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var list []imageGraph
	if err := json.Unmarshal(data, &list); err != nil {
		fmt.Fprintln(os.Stderr, path, err)
		os.Exit(1)
	}
	out, err := yaml.Marshal(list)
	if err != nil {
		fmt.Fprintln(os.Stderr, path, err)
		os.Exit(1)
	}
	fmt.Println(strings.TrimSpace(string(out)))
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-graph" {
		graph(os.Args[2])
		return
	}
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
