package deploy

// CheckK8s checks the Kubernetes manifests under deploy/k8s without a
// cluster: each overlay is rendered with kustomize's own library (krusty,
// as kubectl apply -k does) and every object is decoded strictly into the
// k8s.io/api types (an unknown or misspelt field fails), then the rules of
// docs/decisions.md ("Kubernetes") are asserted against the rendered
// objects and the services' code (the variables each binary reads, the
// routes it serves).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// CheckK8s runs every Kubernetes check on repo.
func CheckK8s(ctx context.Context, repo Repo) *Report {
	rep := &Report{}
	entries, err := os.ReadDir(filepath.Join(repo.Root, k8sRoot, "overlays"))
	if rep.check("k8s.overlays", err == nil, "%s/overlays lists (%v)", k8sRoot, err) {
		dirs := map[string]bool{}
		for _, e := range entries {
			if e.IsDir() {
				dirs[e.Name()] = true
			}
		}
		for f := range repo.Files {
			if rest, ok := strings.CutPrefix(f, k8sRoot+"/overlays/"); ok && strings.Contains(rest, "/") {
				dirs[strings.SplitN(rest, "/", 2)[0]] = true
			}
		}
		for _, d := range slices.Sorted(mapsKeys(dirs)) {
			known := slices.ContainsFunc(k8sOverlays, func(o k8sOverlay) bool { return o.dir == k8sRoot+"/overlays/"+d })
			rep.check("k8s.overlays", known, "overlay %s is one the checks render", d)
		}
	}
	for _, o := range k8sOverlays {
		m, ok := loadOverlay(rep, repo, o)
		if ok {
			checkManifests(ctx, rep, repo, m)
		}
	}
	return rep
}

// manifests is one rendered overlay, decoded.
type manifests struct {
	overlay    string
	ns         string
	namespaces []*corev1.Namespace
	workloads  []*workload
	services   []*corev1.Service
	secrets    map[string]*corev1.Secret // rendered
	examples   map[string]*corev1.Secret // referenced, not rendered (examples file)
	ingresses  []*networkingv1.Ingress
	netpols    []*networkingv1.NetworkPolicy
	pdbs       []*policyv1.PodDisruptionBudget
	hpas       []*autoscalingv2.HorizontalPodAutoscaler
}

// workload is a Deployment or StatefulSet: what the checks need of either.
type workload struct {
	kind, name  string
	replicas    *int32
	selector    *metav1.LabelSelector
	labels      map[string]string // the pod template's
	spec        *corev1.PodSpec
	serviceName string // a StatefulSet's governing Service
	containers  []*container
}

func (w *workload) String() string { return w.kind + " " + w.name }

// container is a container of a workload with the binary its image runs
// ("" for images not built here) and, for the gateway, its role.
type container struct {
	w      *workload
	c      *corev1.Container
	binary string
	role   string
}

func (c *container) String() string { return c.w.name + "/" + c.c.Name }

var k8sScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictDecoder decodes YAML into the registered API types, refusing
// unknown and duplicate fields.
var strictDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, k8sScheme, k8sScheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// renderOverlay runs kustomize on dir over an in-memory copy of deploy/k8s
// (the repository's files with repo's replacements).
func renderOverlay(repo Repo, dir string) ([][]byte, error) {
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(filepath.Join(repo.Root, k8sRoot), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(repo.Root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if repo.Removed[rel] {
			return nil
		}
		data, err := repo.read(rel)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+rel, data)
	})
	if err != nil {
		return nil, err
	}
	for rel, s := range repo.Files {
		if strings.HasPrefix(rel, k8sRoot+"/") {
			if err := mem.WriteFile("/"+rel, []byte(s)); err != nil {
				return nil, err
			}
		}
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/"+dir)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		out = append(out, y)
	}
	return out, nil
}

// splitYAML splits a multi-document YAML file.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if strings.TrimSpace(stripComments(string(doc))) != "" {
			out = append(out, doc)
		}
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// loadOverlay renders and decodes overlay o.
func loadOverlay(rep *Report, repo Repo, o k8sOverlay) (*manifests, bool) {
	docs, err := renderOverlay(repo, o.dir)
	if !rep.check("k8s.render", err == nil, "%s: kustomize renders %s (%v)", o.name, o.dir, err) {
		return nil, false
	}
	m := &manifests{overlay: o.name, secrets: map[string]*corev1.Secret{}, examples: map[string]*corev1.Secret{}}
	ok := true
	for _, doc := range docs {
		obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
		what := "an object"
		if gvk != nil {
			what = gvk.Kind
		}
		if !rep.check("k8s.decode", err == nil, "%s: %s decodes strictly into k8s.io/api types (%v)", o.name, what, err) {
			ok = false
			continue
		}
		m.add(rep, obj)
	}
	if o.examples != "" {
		data, err := repo.read(o.examples)
		var exDocs [][]byte
		if err == nil {
			exDocs, err = splitYAML(data)
		}
		if !rep.check("k8s.decode", err == nil, "%s: %s reads (%v)", o.name, o.examples, err) {
			return nil, false
		}
		for _, doc := range exDocs {
			obj, _, err := strictDecoder.Decode(doc, nil, nil)
			s, isSecret := obj.(*corev1.Secret)
			if !rep.check("k8s.decode", err == nil && isSecret, "%s: %s holds Secrets only, decoded strictly (%v)", o.name, o.examples, err) {
				ok = false
				continue
			}
			m.examples[s.Name] = s
		}
	}
	return m, ok
}

func (m *manifests) add(rep *Report, obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		m.namespaces = append(m.namespaces, o)
	case *appsv1.Deployment:
		m.addWorkload(&workload{kind: "Deployment", name: o.Name, replicas: o.Spec.Replicas, selector: o.Spec.Selector,
			labels: o.Spec.Template.Labels, spec: &o.Spec.Template.Spec}, o.ObjectMeta)
	case *appsv1.StatefulSet:
		m.addWorkload(&workload{kind: "StatefulSet", name: o.Name, replicas: o.Spec.Replicas, selector: o.Spec.Selector,
			labels: o.Spec.Template.Labels, spec: &o.Spec.Template.Spec, serviceName: o.Spec.ServiceName}, o.ObjectMeta)
	case *corev1.Service:
		m.services = append(m.services, o)
		m.noteNS(o.ObjectMeta)
	case *corev1.Secret:
		m.secrets[o.Name] = o
		m.noteNS(o.ObjectMeta)
	case *networkingv1.Ingress:
		m.ingresses = append(m.ingresses, o)
		m.noteNS(o.ObjectMeta)
	case *networkingv1.NetworkPolicy:
		m.netpols = append(m.netpols, o)
		m.noteNS(o.ObjectMeta)
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, o)
		m.noteNS(o.ObjectMeta)
	case *autoscalingv2.HorizontalPodAutoscaler:
		m.hpas = append(m.hpas, o)
		m.noteNS(o.ObjectMeta)
	default:
		rep.check("k8s.decode", false, "%s: %T is a kind the checks know", m.overlay, obj)
	}
}

// noteNS records the namespaces objects are in ("" = none given).
func (m *manifests) noteNS(meta metav1.ObjectMeta) {
	if m.ns == "" {
		m.ns = meta.Namespace
	} else if meta.Namespace != m.ns {
		m.ns = "\x00mixed"
	}
}

func (m *manifests) addWorkload(w *workload, meta metav1.ObjectMeta) {
	m.noteNS(meta)
	for i := range w.spec.Containers {
		c := &container{w: w, c: &w.spec.Containers[i]}
		if b, ok := ourImage(c.c.Image); ok {
			c.binary = b
			if b == "gateway" {
				c.role = envLiteral(c.c, "GATEWAY_ROLE")
			}
		}
		w.containers = append(w.containers, c)
	}
	m.workloads = append(m.workloads, w)
}

// ourImage reports the binary an image of this repository runs:
// trueportai/<binary>[:tag].
func ourImage(image string) (string, bool) {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	b, ok := strings.CutPrefix(name, "trueportai/")
	if !ok {
		return "", false
	}
	_, known := binaryByName(b)
	return b, known
}

func envLiteral(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value
		}
	}
	return ""
}

// secret is a Secret the pods may reference: rendered, or in the examples file.
func (m *manifests) secret(name string) (*corev1.Secret, bool) {
	if s, ok := m.secrets[name]; ok {
		return s, true
	}
	s, ok := m.examples[name]
	return s, ok
}

func secretKeys(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// envValue resolves variable name of c: a literal, or a Secret's value.
// set is false when c does not set it; known is false when the value
// cannot be known here (another valueFrom, a missing Secret key).
func (m *manifests) envValue(c *corev1.Container, name string) (val string, set, known bool) {
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom == nil {
			return e.Value, true, true
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			if s, ok := m.secret(ref.Name); ok {
				v, ok := secretKeys(s)[ref.Key]
				return v, true, ok
			}
		}
		return "", true, false
	}
	return "", false, false
}

// selects reports whether sel selects pods labelled lbls.
func selects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(lbls))
}

// selectsMap is selects for a Service's plain selector.
func selectsMap(sel, lbls map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(lbls))
}

// workloadsOf are the workloads whose pods a Service selects.
func (m *manifests) workloadsOf(svc *corev1.Service) []*workload {
	var out []*workload
	for _, w := range m.workloads {
		if selectsMap(svc.Spec.Selector, w.labels) {
			out = append(out, w)
		}
	}
	return out
}

func (m *manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// containerPort resolves a port (name or number) against the workload's
// containers: the port number, and whether it is declared.
func (w *workload) containerPort(name string, number int32) (int32, *container, bool) {
	for _, c := range w.containers {
		for _, p := range c.c.Ports {
			if (name != "" && p.Name == name) || (name == "" && p.ContainerPort == number) {
				return p.ContainerPort, c, true
			}
		}
	}
	return 0, nil, false
}

// binaryWorkloads are the workloads running binary (in role, "" = any).
func (m *manifests) binaryWorkloads(binary, role string) []*workload {
	var out []*workload
	for _, w := range m.workloads {
		for _, c := range w.containers {
			if c.binary == binary && (role == "" || c.role == role) {
				out = append(out, w)
				break
			}
		}
	}
	return out
}

func (m *manifests) containers() []*container {
	var out []*container
	for _, w := range m.workloads {
		out = append(out, w.containers...)
	}
	return out
}

func checkManifests(ctx context.Context, rep *Report, repo Repo, m *manifests) {
	checkNamespace(rep, m)
	checkWorkloadSet(rep, m)
	for _, c := range m.containers() {
		checkContainer(ctx, rep, repo, m, c)
	}
	for _, w := range m.workloads {
		checkPod(ctx, rep, repo, m, w)
	}
	checkSecrets(rep, m)
	checkServices(rep, m)
	flows := checkDials(rep, m)
	flows = append(flows, checkIngress(ctx, rep, repo, m)...)
	flows = append(flows, metricsFlows(m)...)
	checkNetworkPolicies(rep, m, flows)
	checkScaling(rep, m)
	checkLimits(rep, m)
}

func checkNamespace(rep *Report, m *manifests) {
	names := make([]string, 0, len(m.namespaces))
	for _, n := range m.namespaces {
		names = append(names, n.Name)
	}
	ok := len(names) == 1 && m.ns == names[0]
	rep.check("k8s.namespace", ok, "%s: one Namespace %v, and every object in it (%q)", m.overlay, names, strings.Trim(m.ns, "\x00"))
	if len(m.namespaces) == 1 {
		l := m.namespaces[0].Labels
		rep.check("k8s.namespace", l["pod-security.kubernetes.io/enforce"] == "restricted",
			"%s: namespace %s enforces the restricted Pod Security Standard", m.overlay, names[0])
	}
	for _, s := range m.examples {
		rep.check("k8s.namespace", s.Namespace == "" || s.Namespace == m.ns, "%s: example Secret %s is for namespace %s", m.overlay, s.Name, m.ns)
	}
}

// checkWorkloadSet: the services run as the decisions say (one platform,
// one gateway proxy and one ingester workload).
func checkWorkloadSet(rep *Report, m *manifests) {
	for _, want := range []struct{ binary, role string }{{"platform-backend", ""}, {"gateway", roleProxy}, {"gateway", roleIngester}} {
		ws := m.binaryWorkloads(want.binary, want.role)
		rep.check("k8s.workloads", len(ws) == 1 && ws[0].kind == "Deployment", "%s: one Deployment runs %s %s (%d)", m.overlay, want.binary, want.role, len(ws))
	}
	for _, c := range m.containers() {
		if c.binary == "gateway" {
			rep.check("k8s.workloads", c.role == roleProxy || c.role == roleIngester,
				"%s: %s sets GATEWAY_ROLE to proxy or ingester (got %q)", m.overlay, c, c.role)
		}
	}
}

// fmtPort is a port for messages.
func fmtPort(w *workload, port int32) string { return fmt.Sprintf("%s:%d", w.name, port) }
