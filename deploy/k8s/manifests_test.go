package k8s

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// operatorSecrets are the Secrets the manifests use but do not ship: the
// operator creates them (deploy/README.md).
var operatorSecrets = map[string][]string{"duomq-controller-token": {"token"}}

// workload is a StatefulSet or a Deployment, reduced to what is checked.
type workload struct {
	kind, name, namespace string
	selector              *metav1.LabelSelector
	template              corev1.PodTemplateSpec
	claims                []string // volume claim templates
	serviceName           string   // a StatefulSet's governing Service
}

func (w workload) String() string { return w.kind + "/" + w.name }

// manifests are every object of deploy/k8s, by kind.
type manifests struct {
	namespaces []corev1.Namespace
	configMaps map[string]corev1.ConfigMap
	services   []corev1.Service
	workloads  []workload
	pdbs       []policyv1.PodDisruptionBudget
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// load decodes every document of every *.yaml file strictly (an unknown
// field is an error) into its API type.
func load(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests (%v)", err)
	}
	m := manifests{configMaps: map[string]corev1.ConfigMap{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if err := m.add([]byte(doc)); err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	return m
}

// add decodes one document.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	if tm.Kind == "" && tm.APIVersion == "" {
		return nil // comments only
	}
	want := map[string]string{"Namespace": "v1", "ConfigMap": "v1", "Service": "v1",
		"StatefulSet": "apps/v1", "Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1"}[tm.Kind]
	if want == "" || tm.APIVersion != want {
		return fmt.Errorf("%s %s: not a kind these manifests use (Namespace, ConfigMap, Service, StatefulSet, Deployment, PodDisruptionBudget)", tm.APIVersion, tm.Kind)
	}
	switch tm.Kind {
	case "Namespace":
		var o corev1.Namespace
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.namespaces = append(m.namespaces, o)
	case "ConfigMap":
		var o corev1.ConfigMap
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.configMaps[o.Name] = o
	case "Service":
		var o corev1.Service
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.services = append(m.services, o)
	case "StatefulSet":
		var o appsv1.StatefulSet
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		w := workload{kind: tm.Kind, name: o.Name, namespace: o.Namespace, selector: o.Spec.Selector, template: o.Spec.Template, serviceName: o.Spec.ServiceName}
		for _, c := range o.Spec.VolumeClaimTemplates {
			w.claims = append(w.claims, c.Name)
		}
		m.workloads = append(m.workloads, w)
	case "Deployment":
		var o appsv1.Deployment
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.workloads = append(m.workloads, workload{kind: tm.Kind, name: o.Name, namespace: o.Namespace, selector: o.Spec.Selector, template: o.Spec.Template})
	case "PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		if err := yaml.UnmarshalStrict(doc, &o); err != nil {
			return err
		}
		m.pdbs = append(m.pdbs, o)
	}
	return nil
}

// selects reports whether sel (nil: nothing) selects a pod labelled lbls.
func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(lbls))
}

func TestManifestKinds(t *testing.T) {
	m := load(t)
	if len(m.namespaces) != 1 {
		t.Fatalf("%d namespaces, want 1", len(m.namespaces))
	}
	if len(m.configMaps) != 1 {
		t.Errorf("%d ConfigMaps, want 1", len(m.configMaps))
	}
	ns := m.namespaces[0].Name
	kinds := map[string][]string{}
	for _, w := range m.workloads {
		kinds[w.kind] = append(kinds[w.kind], w.name)
		if w.namespace != ns {
			t.Errorf("%s is in namespace %q, want %q", w, w.namespace, ns)
		}
	}
	for _, want := range []string{"StatefulSet/duomq-etcd", "StatefulSet/duomq-broker", "Deployment/duomq-proxy"} {
		kind, name, _ := strings.Cut(want, "/")
		if !slices.Contains(kinds[kind], name) {
			t.Errorf("no %s (have %v)", want, kinds)
		}
	}
	for _, s := range m.services {
		if s.Namespace != ns {
			t.Errorf("Service %s is in namespace %q, want %q", s.Name, s.Namespace, ns)
		}
	}
	for _, p := range m.pdbs {
		if p.Namespace != ns {
			t.Errorf("PodDisruptionBudget %s is in namespace %q, want %q", p.Name, p.Namespace, ns)
		}
	}
	for _, c := range m.configMaps {
		if c.Namespace != ns {
			t.Errorf("ConfigMap %s is in namespace %q, want %q", c.Name, c.Namespace, ns)
		}
	}
}

func TestWorkloadSelectorsMatchTheirPods(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads {
		if !selects(t, w.selector, w.template.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", w, w.selector, w.template.Labels)
		}
		for _, o := range m.workloads {
			if o.name != w.name && selects(t, w.selector, o.template.Labels) {
				t.Errorf("%s: selector also matches the pods of %s", w, o)
			}
		}
	}
}

// containerPorts are the named and numbered ports of a pod's containers.
func containerPorts(spec corev1.PodSpec) (names map[string]bool, numbers map[int32]bool) {
	names, numbers = map[string]bool{}, map[int32]bool{}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" {
				names[p.Name] = true
			}
			numbers[p.ContainerPort] = true
		}
	}
	return names, numbers
}

func hasPort(spec corev1.PodSpec, port intstr.IntOrString) bool {
	names, numbers := containerPorts(spec)
	if port.Type == intstr.String {
		return names[port.StrVal]
	}
	return numbers[port.IntVal]
}

func TestServicesPointAtPodsAndPorts(t *testing.T) {
	m := load(t)
	for _, s := range m.services {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var backends []workload
		for _, w := range m.workloads {
			if len(s.Spec.Selector) > 0 && sel.Matches(labels.Set(w.template.Labels)) {
				backends = append(backends, w)
			}
		}
		if len(backends) == 0 {
			t.Errorf("Service %s: selector %v matches no workload's pods", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			for _, w := range backends {
				if !hasPort(w.template.Spec, target) {
					t.Errorf("Service %s port %s: target %s is not a container port of %s", s.Name, p.Name, target.String(), w)
				}
			}
		}
	}
}

func TestStatefulSetsHaveHeadlessServices(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads {
		if w.kind != "StatefulSet" {
			continue
		}
		found := false
		for _, s := range m.services {
			if s.Name == w.serviceName {
				found = true
				if s.Spec.ClusterIP != corev1.ClusterIPNone {
					t.Errorf("%s: governing Service %s is not headless", w, s.Name)
				}
				if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
					t.Errorf("%s: governing Service %s does not select its pods", w, s.Name)
				}
			}
		}
		if !found {
			t.Errorf("%s: serviceName %q names no Service", w, w.serviceName)
		}
	}
}

func TestPodDisruptionBudgetsSelectOneWorkload(t *testing.T) {
	m := load(t)
	covered := map[string]bool{}
	for _, p := range m.pdbs {
		var hit []string
		for _, w := range m.workloads {
			if selects(t, p.Spec.Selector, w.template.Labels) {
				hit = append(hit, w.String())
				covered[w.String()] = true
			}
		}
		if len(hit) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want exactly one workload", p.Name, hit)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: give one of minAvailable and maxUnavailable", p.Name)
		}
	}
	for _, want := range []string{"StatefulSet/duomq-etcd", "StatefulSet/duomq-broker", "Deployment/duomq-proxy"} {
		if !covered[want] {
			t.Errorf("no PodDisruptionBudget covers %s", want)
		}
	}
}

// varRef is a $(NAME) reference in a container's args or env.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func TestPodReferencesExist(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads {
		spec := w.template.Spec
		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v
			checkVolume(t, m, w, v)
		}
		for _, c := range spec.Containers {
			where := fmt.Sprintf("%s container %s", w, c.Name)
			if c.Image == "" {
				t.Errorf("%s: no image", where)
			}
			mounts := map[string]string{} // mount path -> volume
			for _, vm := range c.VolumeMounts {
				if _, ok := volumes[vm.Name]; !ok && !slices.Contains(w.claims, vm.Name) {
					t.Errorf("%s: volume mount %s names no volume or claim template", where, vm.Name)
				}
				mounts[vm.MountPath] = vm.Name
			}
			checkEnv(t, m, where, c)
			checkConfigArg(t, m, where, c, mounts, volumes)
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				checkProbe(t, where, spec, p)
			}
		}
	}
}

// checkVolume checks that a ConfigMap or Secret volume names existing keys.
func checkVolume(t *testing.T, m manifests, w workload, v corev1.Volume) {
	t.Helper()
	switch {
	case v.ConfigMap != nil:
		cm, ok := m.configMaps[v.ConfigMap.Name]
		if !ok {
			t.Errorf("%s volume %s: no ConfigMap %q", w, v.Name, v.ConfigMap.Name)
			return
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				t.Errorf("%s volume %s: ConfigMap %s has no key %q", w, v.Name, cm.Name, it.Key)
			}
		}
	case v.Secret != nil:
		keys, ok := operatorSecrets[v.Secret.SecretName]
		if !ok {
			t.Errorf("%s volume %s: Secret %q is neither shipped nor one the operator makes", w, v.Name, v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			if !slices.Contains(keys, it.Key) {
				t.Errorf("%s volume %s: Secret %s has no documented key %q", w, v.Name, v.Secret.SecretName, it.Key)
			}
		}
	}
}

// checkEnv checks ConfigMap key references and that every $(VAR) of the
// env and args is defined before its use.
func checkEnv(t *testing.T, m manifests, where string, c corev1.Container) {
	t.Helper()
	defined := map[string]bool{}
	refs := func(s, what string) {
		for _, r := range varRef.FindAllStringSubmatch(s, -1) {
			if !defined[r[1]] {
				t.Errorf("%s: %s uses $(%s), which no earlier env entry defines", where, what, r[1])
			}
		}
	}
	for _, e := range c.Env {
		refs(e.Value, "env "+e.Name)
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			ref := e.ValueFrom.ConfigMapKeyRef
			if _, ok := m.configMaps[ref.Name].Data[ref.Key]; !ok {
				t.Errorf("%s: env %s reads ConfigMap %s key %s, which does not exist", where, e.Name, ref.Name, ref.Key)
			}
		}
		defined[e.Name] = true
	}
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		refs(a, "args")
	}
}

// checkConfigArg checks that the file given to --config is a key of the
// ConfigMap mounted on its directory.
func checkConfigArg(t *testing.T, m manifests, where string, c corev1.Container, mounts map[string]string, volumes map[string]corev1.Volume) {
	t.Helper()
	for i, a := range c.Args {
		if a != "--config" || i+1 == len(c.Args) {
			continue
		}
		file := c.Args[i+1]
		v, ok := volumes[mounts[path.Dir(file)]]
		if !ok || v.ConfigMap == nil {
			t.Errorf("%s: --config %s is not on a mounted ConfigMap", where, file)
			continue
		}
		key := path.Base(file)
		for _, it := range v.ConfigMap.Items {
			if it.Path == key {
				key = it.Key
			}
		}
		body, ok := m.configMaps[v.ConfigMap.Name].Data[key]
		if !ok {
			t.Errorf("%s: --config %s: ConfigMap %s has no key %s", where, file, v.ConfigMap.Name, key)
			continue
		}
		var parsed map[string]any
		if err := yaml.Unmarshal([]byte(body), &parsed); err != nil || len(parsed) == 0 {
			t.Errorf("%s: ConfigMap key %s is not a YAML mapping: %v", where, key, err)
		}
	}
}

// checkProbe checks that an HTTP or TCP probe names a container port.
func checkProbe(t *testing.T, where string, spec corev1.PodSpec, p *corev1.Probe) {
	t.Helper()
	switch {
	case p == nil:
	case p.HTTPGet != nil && !hasPort(spec, p.HTTPGet.Port):
		t.Errorf("%s: HTTP probe port %s is not a container port", where, p.HTTPGet.Port.String())
	case p.TCPSocket != nil && !hasPort(spec, p.TCPSocket.Port):
		t.Errorf("%s: TCP probe port %s is not a container port", where, p.TCPSocket.Port.String())
	}
}

func TestPodsRunAsNonRoot(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads {
		psc := w.template.Spec.SecurityContext
		for _, c := range w.template.Spec.Containers {
			nonRoot, user := false, int64(-1)
			if psc != nil {
				nonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
				if psc.RunAsUser != nil {
					user = *psc.RunAsUser
				}
			}
			if sc := c.SecurityContext; sc != nil {
				if sc.RunAsNonRoot != nil {
					nonRoot = *sc.RunAsNonRoot
				}
				if sc.RunAsUser != nil {
					user = *sc.RunAsUser
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s container %s: allowPrivilegeEscalation is not false", w, c.Name)
				}
			}
			if !nonRoot || user != 65532 {
				t.Errorf("%s container %s: runAsNonRoot %v, runAsUser %d; want true and 65532 (the image's user)", w, c.Name, nonRoot, user)
			}
		}
		if len(w.claims) > 0 && (psc == nil || psc.FSGroup == nil) {
			t.Errorf("%s: volume claims without an fsGroup are not writable by the non-root user", w)
		}
	}
}
