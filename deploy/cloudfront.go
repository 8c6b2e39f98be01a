package deploy

// CheckCloudFront checks the CloudFormation template of the CloudFront
// distribution (deploy/cloudfront) without AWS: the YAML is read with its
// short-form intrinsic functions (!Ref, !Sub, !GetAtt, ...), the
// distribution is decoded strictly into the subset of
// AWS::CloudFront::Distribution it uses (a misspelt property fails), and
// its behaviours are checked against both services' route tables, as
// CloudFront matches them (in order, first match; the default last).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const cloudFrontTemplate = "deploy/cloudfront/distribution.yaml"

// cloudFrontOrigins maps each origin id to the binary behind it.
var cloudFrontOrigins = map[string]string{"platform": "platform-backend", "gateway": "gateway"}

// Managed CloudFront policies, by id.
const cachingDisabledID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"

// managedOriginRequestPolicies are the managed origin request policies the
// checks know: what each forwards.
var managedOriginRequestPolicies = map[string]originRequestPolicy{
	"216adef6-5c7f-47e4-b989-5492eafa07d3": {name: "AllViewer", headers: "allViewer", cookies: "all", queryStrings: "all"},
	"33f36d7e-f396-46d9-90e0-52428a34d9dc": {name: "AllViewerAndCloudFrontHeaders-2022-06", headers: "allViewerAndWhitelistCloudFront",
		cookies: "all", queryStrings: "all", cloudFrontHeaders: []string{
			"CloudFront-Forwarded-Proto", "CloudFront-Is-Android-Viewer", "CloudFront-Is-Desktop-Viewer", "CloudFront-Is-IOS-Viewer",
			"CloudFront-Is-Mobile-Viewer", "CloudFront-Is-SmartTV-Viewer", "CloudFront-Is-Tablet-Viewer", "CloudFront-Viewer-Address",
			"CloudFront-Viewer-ASN", "CloudFront-Viewer-City", "CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Name",
			"CloudFront-Viewer-Country-Region", "CloudFront-Viewer-Country-Region-Name", "CloudFront-Viewer-Http-Version",
			"CloudFront-Viewer-Latitude", "CloudFront-Viewer-Longitude", "CloudFront-Viewer-Metro-Code", "CloudFront-Viewer-Postal-Code",
			"CloudFront-Viewer-Time-Zone", "CloudFront-Viewer-TLS",
		}},
}

type originRequestPolicy struct {
	name                           string
	headers, cookies, queryStrings string // header/cookie/query-string behaviours
	cloudFrontHeaders              []string
}

// allMethods are CloudFront's seven allowed methods.
var allMethods = []string{"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}

// maxOriginReadTimeout is CloudFront's ceiling (with the quota raised).
const maxOriginReadTimeout = 180

// ------------------------------------------------------------ template model

// cfn is a template value that may be an intrinsic function.
type cfn = json.RawMessage

type cfnTemplate struct {
	AWSTemplateFormatVersion string
	Description              string
	Metadata                 map[string]any
	Parameters               map[string]cfnParameter
	Mappings                 map[string]any
	Conditions               map[string]any
	Resources                map[string]cfnResource
	Outputs                  map[string]any
}

type cfnParameter struct {
	Type          string
	Default       any
	Description   string
	MinValue      *float64
	MaxValue      *float64
	AllowedValues []any
}

type cfnResource struct {
	Type       string
	Properties json.RawMessage
	DependsOn  any
	Condition  string
}

type cfDistributionProps struct {
	DistributionConfig cfDistributionConfig
	Tags               []any
}

type cfDistributionConfig struct {
	Enabled              bool
	Comment              cfn
	Aliases              []cfn
	HttpVersion          string
	IPV6Enabled          bool
	PriceClass           cfn
	WebACLId             cfn
	Logging              map[string]any
	Restrictions         map[string]any
	CustomErrorResponses []any
	ViewerCertificate    *struct {
		AcmCertificateArn            cfn
		SslSupportMethod             string
		MinimumProtocolVersion       string
		CloudFrontDefaultCertificate bool
	}
	Origins              []cfOrigin
	CacheBehaviors       []cfBehavior
	DefaultCacheBehavior cfBehavior
}

type cfOrigin struct {
	Id                  string
	DomainName          cfn
	OriginPath          string
	ConnectionAttempts  int
	ConnectionTimeout   int
	OriginCustomHeaders []struct {
		HeaderName  string
		HeaderValue cfn
	}
	CustomOriginConfig *struct {
		HTTPPort               int
		HTTPSPort              int
		OriginProtocolPolicy   string
		OriginSSLProtocols     []string
		OriginReadTimeout      cfn
		OriginKeepaliveTimeout cfn
	}
}

type cfBehavior struct {
	PathPattern             string
	TargetOriginId          string
	ViewerProtocolPolicy    string
	AllowedMethods          []string
	CachedMethods           []string
	CachePolicyId           cfn
	OriginRequestPolicyId   cfn
	ResponseHeadersPolicyId cfn
	Compress                *bool
	FunctionAssociations    []struct {
		EventType   string
		FunctionARN cfn
	}
}

type cfFunctionProps struct {
	Name           cfn
	AutoPublish    bool
	FunctionCode   string
	FunctionConfig struct {
		Comment                   string
		Runtime                   string
		KeyValueStoreAssociations []any
	}
}

type cfOriginRequestPolicyProps struct {
	OriginRequestPolicyConfig struct {
		Name          cfn
		Comment       string
		HeadersConfig struct {
			HeaderBehavior string
			Headers        []string
		}
		CookiesConfig struct {
			CookieBehavior string
			Cookies        []string
		}
		QueryStringsConfig struct {
			QueryStringBehavior string
			QueryStrings        []string
		}
	}
}

// ------------------------------------------------------------ YAML with CloudFormation tags

// cfnShortForms maps a short-form tag to its long form.
var cfnShortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!Join": "Fn::Join",
	"!Select": "Fn::Select", "!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr",
	"!ImportValue": "Fn::ImportValue", "!GetAZs": "Fn::GetAZs", "!Transform": "Fn::Transform", "!ToJsonString": "Fn::ToJsonString",
	"!Length": "Fn::Length",
}

// cfnTree turns a YAML node into plain values, short-form intrinsic
// functions into their long form ({"Ref": ...}, {"Fn::GetAtt": [r, a]}).
func cfnTree(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return cfnTree(n.Content[0])
	case yaml.AliasNode:
		return cfnTree(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := cfnTree(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			val, err := cfnTree(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		long, ok := cfnShortForms[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		if s, isStr := v.(string); long == "Fn::GetAtt" && isStr {
			r, a, _ := strings.Cut(s, ".")
			v = []any{r, a}
		}
		return map[string]any{long: v}, nil
	}
	return v, nil
}

// parseCloudFormation reads a template: its plain tree and its model.
func parseCloudFormation(data []byte) (any, *cfnTemplate, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	tree, err := cfnTree(&doc)
	if err != nil {
		return nil, nil, err
	}
	js, err := json.Marshal(tree)
	if err != nil {
		return nil, nil, err
	}
	var t cfnTemplate
	if err := strictJSON(js, &t); err != nil {
		return nil, nil, err
	}
	return tree, &t, nil
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// intrinsic reads a value: a literal string or number, or {"Ref": name}.
func intrinsic(v cfn) (lit string, ref string, isLit bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, "", true
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), "", true
	}
	var r struct{ Ref string }
	if json.Unmarshal(v, &r) == nil && r.Ref != "" {
		return "", r.Ref, false
	}
	return "", "", false
}

// number resolves a numeric value: a literal, or a parameter's default
// (also bounded by the parameter's MaxValue).
func (t *cfnTemplate) number(v cfn) (float64, bool) {
	lit, ref, isLit := intrinsic(v)
	if isLit {
		n, err := strconv.ParseFloat(lit, 64)
		return n, err == nil
	}
	p, ok := t.Parameters[ref]
	if !ok || p.Default == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(fmt.Sprint(p.Default), 64)
	if err != nil || (p.MaxValue != nil && *p.MaxValue > maxOriginReadTimeout) {
		return 0, false
	}
	return n, true
}

// ------------------------------------------------------------ checks

// CheckCloudFront runs every CloudFront check on repo.
func CheckCloudFront(ctx context.Context, repo Repo) *Report {
	rep := &Report{}
	data, err := repo.read(cloudFrontTemplate)
	var tree any
	var t *cfnTemplate
	if err == nil {
		tree, t, err = parseCloudFormation(data)
	}
	if !rep.check("cf.parse", err == nil, "%s parses as a CloudFormation template (%v)", cloudFrontTemplate, err) {
		return rep
	}
	var dists []string
	for name, r := range t.Resources {
		if r.Type == "AWS::CloudFront::Distribution" {
			dists = append(dists, name)
		}
	}
	if !rep.check("cf.parse", len(dists) == 1, "one AWS::CloudFront::Distribution (%v)", dists) {
		return rep
	}
	var props cfDistributionProps
	err = strictJSON(t.Resources[dists[0]].Properties, &props)
	if !rep.check("cf.schema", err == nil, "%s's properties are ones the checks know (%v)", dists[0], err) {
		return rep
	}
	checkCFRefs(rep, t, tree)
	d := &props.DistributionConfig
	checkCFOrigins(rep, t, d)
	checkCFBehaviours(rep, t, d)
	checkCFRoutes(rep, repo, d)
	checkCFTimeouts(ctx, rep, repo, t, d)
	return rep
}

// pseudoParameters are CloudFormation's own references.
var pseudoParameters = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// getAttributes are the attributes !GetAtt may read, per resource type.
var getAttributes = map[string][]string{
	"AWS::CloudFront::Function":            {"FunctionARN", "FunctionMetadata.FunctionARN", "Stage"},
	"AWS::CloudFront::Distribution":        {"DomainName", "Id"},
	"AWS::CloudFront::OriginRequestPolicy": {"Id", "LastModifiedTime"},
	"AWS::CloudFront::CachePolicy":         {"Id", "LastModifiedTime"},
}

var subVarRE = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// checkCFRefs: every Ref, GetAtt and ${} of Sub names a parameter, a
// resource (and an attribute it has) or a pseudo parameter.
func checkCFRefs(rep *Report, t *cfnTemplate, tree any) {
	known := func(name string) bool {
		_, p := t.Parameters[name]
		_, r := t.Resources[name]
		return p || r || pseudoParameters[name]
	}
	getAtt := func(res, attr string) bool {
		r, ok := t.Resources[res]
		return ok && slices.Contains(getAttributes[r.Type], attr)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "Ref":
					s, _ := x.(string)
					rep.check("cf.refs", known(s), "!Ref %s names a parameter or resource", s)
				case "Fn::GetAtt":
					l, _ := x.([]any)
					ok := len(l) == 2
					var res, attr string
					if ok {
						res, _ = l[0].(string)
						attr, _ = l[1].(string)
					}
					rep.check("cf.refs", ok && getAtt(res, attr), "!GetAtt %s.%s names a resource attribute", res, attr)
				case "Fn::Sub":
					s, _ := x.(string)
					if l, ok := x.([]any); ok && len(l) > 0 {
						s, _ = l[0].(string) // its own variables are in l[1]
					}
					for _, m := range subVarRE.FindAllStringSubmatch(s, -1) {
						res, attr, dotted := strings.Cut(m[1], ".")
						ok := known(m[1]) || dotted && getAtt(res, attr)
						rep.check("cf.refs", ok, "!Sub ${%s} names a parameter, resource or attribute", m[1])
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
}

// checkCFOrigins: the two origins, custom, https only, each behind a
// behaviour.
func checkCFOrigins(rep *Report, t *cfnTemplate, d *cfDistributionConfig) {
	var ids []string
	for _, o := range d.Origins {
		ids = append(ids, o.Id)
		c := o.CustomOriginConfig
		ok := c != nil && c.OriginProtocolPolicy == "https-only" && slices.Equal(c.OriginSSLProtocols, []string{"TLSv1.2"})
		rep.check("cf.origins", ok, "origin %s is a custom origin reached over https only (TLSv1.2)", o.Id)
		used := d.DefaultCacheBehavior.TargetOriginId == o.Id || slices.ContainsFunc(d.CacheBehaviors, func(b cfBehavior) bool { return b.TargetOriginId == o.Id })
		rep.check("cf.origins", used, "origin %s is the target of a behaviour", o.Id)
	}
	slices.Sort(ids)
	want := slices.Sorted(mapsKeys(cloudFrontOrigins))
	rep.check("cf.origins", slices.Equal(ids, want), "origins %v (want %v)", ids, want)
}

// checkCFBehaviours: nothing cached; API behaviours forward every viewer
// header, cookie and query string and CloudFront-Viewer-Address, allow
// every method, never redirect; the gateway's is not compressed by
// CloudFront; the default behaviour answers 404 itself.
func checkCFBehaviours(rep *Report, t *cfnTemplate, d *cfDistributionConfig) {
	all := append(slices.Clone(d.CacheBehaviors), d.DefaultCacheBehavior)
	for i, b := range all {
		name := b.PathPattern
		if i == len(all)-1 {
			name = "default"
		}
		lit, _, _ := intrinsic(b.CachePolicyId)
		rep.check("cf.no-cache", lit == cachingDisabledID, "behaviour %s uses the CachingDisabled policy (%s)", name, lit)
		rep.check("cf.viewer", b.ViewerProtocolPolicy == "https-only", "behaviour %s is https-only (got %q; a redirect drops POST bodies)", name, b.ViewerProtocolPolicy)
		if i == len(all)-1 {
			continue
		}
		methods := slices.Clone(b.AllowedMethods)
		slices.Sort(methods)
		rep.check("cf.methods", slices.Equal(methods, slices.Sorted(slices.Values(allMethods))), "behaviour %s allows %v", name, allMethods)
		p, ok := t.originRequestPolicy(b.OriginRequestPolicyId)
		rep.check("cf.origin-request", ok && (p.headers == "allViewer" || p.headers == "allViewerAndWhitelistCloudFront") && p.cookies == "all" && p.queryStrings == "all",
			"behaviour %s forwards every viewer header, cookie and query string (policy %s)", name, p.name)
		rep.check("cf.origin-request", ok && slices.Contains(p.cloudFrontHeaders, "CloudFront-Viewer-Address"),
			"behaviour %s forwards CloudFront-Viewer-Address (the client's address; policy %s)", name, p.name)
		if cloudFrontOrigins[b.TargetOriginId] == "gateway" {
			rep.check("cf.viewer", b.Compress != nil && !*b.Compress, "behaviour %s leaves the gateway's answers and streams uncompressed", name)
		}
	}

	// The default behaviour: a viewer-request function answers 404.
	ok := false
	for _, fa := range d.DefaultCacheBehavior.FunctionAssociations {
		var ga struct {
			GetAtt []string `json:"Fn::GetAtt"`
		}
		if fa.EventType != "viewer-request" || json.Unmarshal(fa.FunctionARN, &ga) != nil || len(ga.GetAtt) != 2 {
			continue
		}
		r, exists := t.Resources[ga.GetAtt[0]]
		var fp cfFunctionProps
		if exists && r.Type == "AWS::CloudFront::Function" && strictJSON(r.Properties, &fp) == nil {
			ok = fp.AutoPublish && regexp.MustCompile(`statusCode:\s*404\b`).MatchString(fp.FunctionCode) &&
				!strings.Contains(fp.FunctionCode, "return event.request")
		}
	}
	rep.check("cf.internal", ok, "the default behaviour's viewer-request function answers 404 (nothing outside the API paths reaches an origin)")
}

// originRequestPolicy resolves a behaviour's origin request policy: a
// managed one by id, or one the template defines (!Ref).
func (t *cfnTemplate) originRequestPolicy(v cfn) (originRequestPolicy, bool) {
	lit, ref, isLit := intrinsic(v)
	if isLit {
		p, ok := managedOriginRequestPolicies[lit]
		if !ok {
			p.name = "unknown " + lit
		}
		return p, ok
	}
	r, ok := t.Resources[ref]
	var props cfOriginRequestPolicyProps
	if !ok || r.Type != "AWS::CloudFront::OriginRequestPolicy" || strictJSON(r.Properties, &props) != nil {
		return originRequestPolicy{name: "unresolved " + ref}, false
	}
	c := props.OriginRequestPolicyConfig
	p := originRequestPolicy{name: ref, headers: c.HeadersConfig.HeaderBehavior, cookies: c.CookiesConfig.CookieBehavior, queryStrings: c.QueryStringsConfig.QueryStringBehavior}
	if p.headers == "allViewerAndWhitelistCloudFront" {
		p.cloudFrontHeaders = c.HeadersConfig.Headers
	}
	return p, true
}

// cfPatternMatch is CloudFront's path pattern match: * any characters
// (slashes too), ? one, case-sensitive, the leading slash optional.
func cfPatternMatch(pattern, p string) bool {
	if !strings.HasPrefix(pattern, "/") {
		pattern = "/" + pattern
	}
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	ok, _ := regexp.MatchString(re.String(), p)
	return ok
}

// cfBehaviourFor is the behaviour CloudFront applies to path p (nil: the
// default).
func cfBehaviourFor(d *cfDistributionConfig, p string) *cfBehavior {
	for i := range d.CacheBehaviors {
		if cfPatternMatch(d.CacheBehaviors[i].PathPattern, p) {
			return &d.CacheBehaviors[i]
		}
	}
	return nil
}

// checkCFRoutes: each binary's public routes (under its edge prefix) reach
// its origin through a behaviour that allows the route's method; every
// other route, and the internal paths, fall to the default behaviour.
func checkCFRoutes(rep *Report, repo Repo, d *cfDistributionConfig) {
	for _, b := range k8sBinaries {
		if len(b.edges) == 0 {
			continue
		}
		role := ""
		if slices.Contains(b.roles, roleProxy) {
			role = roleProxy
		}
		routes, err := servedRoutes(repo, b.name, role)
		if !rep.check("cf.routes", err == nil && len(routes) > 0, "%s's route table reads (%v)", b.name, err) {
			continue
		}
		for _, r := range routes {
			p := samplePath(r.path)
			beh := cfBehaviourFor(d, p)
			if under, edge := b.underEdge(p); !under {
				rep.check("cf.internal", beh == nil, "%s %s (not under %s) falls to the default behaviour", b.name, r.path, edge)
				continue
			}
			ok := beh != nil && cloudFrontOrigins[beh.TargetOriginId] == b.name
			if ok && r.method != "ANY" {
				ok = slices.Contains(beh.AllowedMethods, r.method)
			}
			target := "the default behaviour"
			if beh != nil {
				target = beh.PathPattern + " -> " + beh.TargetOriginId
			}
			rep.check("cf.routes", ok, "%s %s %s reaches the %s origin (%s)", b.name, r.method, r.path, b.name, target)
		}
	}
	for _, p := range internalPaths {
		rep.check("cf.internal", cfBehaviourFor(d, p) == nil, "%s falls to the default behaviour", p)
	}
}

// checkCFTimeouts: the gateway origin waits longer than the gateway waits
// for an upstream's headers (so the gateway answers a slow call itself,
// metered), within CloudFront's ceiling, and keeps connections alive
// longer than CloudFront's default.
func checkCFTimeouts(ctx context.Context, rep *Report, repo Repo, t *cfnTemplate, d *cfDistributionConfig) {
	gw, _ := binaryByName("gateway")
	reads, err := binaryEnv(ctx, repo.Root, gw.target)
	header, perr := time.ParseDuration(reads["UPSTREAM_HEADER_TIMEOUT"].def)
	if !rep.check("cf.timeouts", err == nil && perr == nil, "the gateway's UPSTREAM_HEADER_TIMEOUT default is known (%v)", err) {
		return
	}
	for _, o := range d.Origins {
		c := o.CustomOriginConfig
		if c == nil {
			continue
		}
		read, okRead := t.number(c.OriginReadTimeout)
		keep, okKeep := t.number(c.OriginKeepaliveTimeout)
		switch cloudFrontOrigins[o.Id] {
		case "gateway":
			rep.check("cf.timeouts", okRead && time.Duration(read)*time.Second > header && read <= maxOriginReadTimeout,
				"origin %s read timeout %gs is above the gateway's UPSTREAM_HEADER_TIMEOUT (%s) and at most %ds", o.Id, read, header, maxOriginReadTimeout)
			rep.check("cf.timeouts", okKeep && keep > 5 && keep <= 60, "origin %s keep-alive timeout %gs is raised above the default 5 s (at most 60)", o.Id, keep)
		case "platform-backend":
			rep.check("cf.timeouts", okRead && read >= 30 && read <= 60, "origin %s read timeout %gs is 30-60 s", o.Id, read)
		}
	}
}
