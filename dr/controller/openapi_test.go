package controller_test

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
)

// TestOpenAPIDocumentsEveryRoute keeps docs/controller-api.yaml and the
// server's routes in step, both ways, and checks that every operation
// documents the 401 of its bearer token and that the reasons match.
func TestControllerOpenAPIDocumentsEveryRoute(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "controller-api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI  string                               `yaml:"openapi"`
		Security []map[string][]string                `yaml:"security"`
		Paths    map[string]map[string]map[string]any `yaml:"paths"`
		Comps    struct {
			Schemas map[string]struct {
				Enum       []string       `yaml:"enum"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/controller-api.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Fatalf("security %v: want the bearer scheme on every operation", doc.Security)
	}
	c, err := controller.New(controller.DefaultConfig(), controller.Deps{Store: meta.New(nil, meta.Options{}), Brokers: noBrokers{}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := controller.NewAPI(c, "t")
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range api.Routes() {
		key := strings.ToLower(r.Method) + " " + r.Path
		registered[key] = true
		op, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s %s is served but not in docs/controller-api.yaml", r.Method, r.Path)
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		if _, ok := responses["401"]; !ok {
			t.Errorf("%s %s: no 401 response documented", r.Method, r.Path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("docs/controller-api.yaml documents %s %s, which the server does not serve", strings.ToUpper(method), path)
			}
		}
	}
	enum := doc.Comps.Schemas["Reason"].Enum
	for _, r := range controller.Reasons() {
		if !slices.Contains(enum, r) {
			t.Errorf("reason %s missing from the Reason enum", r)
		}
	}
	if len(enum) != len(controller.Reasons()) {
		t.Errorf("Reason enum has %d values, the server %d", len(enum), len(controller.Reasons()))
	}
	// The status schemas list exactly the JSON fields of their Go types.
	for name, v := range map[string]any{
		"Status": controller.Status{}, "DCStatus": controller.DCStatus{}, "Alive": meta.Alive{},
		"ReplicaSetStatus": controller.ReplicaSetStatus{}, "StandbyStatus": controller.StandbyStatus{},
		"EtcdMember": controller.EtcdMember{}, "OrderedStatus": controller.OrderedStatus{}, "QueueLag": controller.QueueLag{},
		"ConsumerLag": controller.ConsumerLag{}, "LeaderInfo": controller.LeaderInfo{},
	} {
		documented := slices.Sorted(maps.Keys(doc.Comps.Schemas[name].Properties))
		if fields := jsonFields(reflect.TypeOf(v)); !slices.Equal(documented, fields) {
			t.Errorf("schema %s documents %v, its Go type has %v", name, documented, fields)
		}
	}
}

// jsonFields returns the JSON field names of a struct type, sorted, with
// the fields of embedded structs inlined as encoding/json does.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonFields(f.Type)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
