package deploy

import (
	"context"
	"testing"
)

// TestCloudFrontFile runs every CloudFront check on the template.
func TestCloudFrontFile(t *testing.T) {
	rep := CheckCloudFront(context.Background(), Repo{Root: root(t)})
	for _, r := range rep.Results {
		t.Log(r)
	}
	for _, r := range rep.Failed() {
		t.Error(r)
	}
}

// TestEachCloudFrontCheckCatchesItsDefect breaks the template one way per
// case.
func TestEachCloudFrontCheckCatchesItsDefect(t *testing.T) {
	const tpl = cloudFrontTemplate
	const (
		allViewer = "216adef6-5c7f-47e4-b989-5492eafa07d3"
		withCF    = "33f36d7e-f396-46d9-90e0-52428a34d9dc"
	)
	cases := []brokenCase{
		{want: "cf.parse", removed: []string{tpl}},
		{want: "cf.parse", edits: []edit{{tpl, "PriceClass: !Ref PriceClass", "PriceClass: !Reff PriceClass"}}},
		{want: "cf.schema", edits: []edit{{tpl, "OriginReadTimeout: !Ref GatewayOriginReadTimeout", "OriginReadTimout: !Ref GatewayOriginReadTimeout"}}},
		{want: "cf.refs", edits: []edit{{tpl, "DomainName: !Ref GatewayOriginDomain", "DomainName: !Ref GatewayDomain"}}},
		{want: "cf.refs", edits: []edit{{tpl, "FunctionARN: !GetAtt NotFoundFunction.FunctionARN", "FunctionARN: !GetAtt NotFoundFunction.Arn"}}},
		{want: "cf.refs", edits: []edit{{tpl, `Name: !Sub "${AWS::StackName}-not-found"`, `Name: !Sub "${StackName}-not-found"`}}},
		{want: "cf.origins", edits: []edit{{tpl, "          - Id: gateway\n", "          - Id: gateway-origin\n"}}},
		{want: "cf.origins", edits: []edit{{tpl, "            DomainName: !Ref GatewayOriginDomain\n            CustomOriginConfig:\n              OriginProtocolPolicy: https-only", "            DomainName: !Ref GatewayOriginDomain\n            CustomOriginConfig:\n              OriginProtocolPolicy: match-viewer"}}},
		{want: "cf.no-cache", edits: []edit{{tpl, "CachePolicyId: 4135ea2d-6df8-44a3-9df3-4b5a84be39ad # Managed-CachingDisabled\n            OriginRequestPolicyId: " + withCF + " # Managed-AllViewerAndCloudFrontHeaders-2022-06\n            Compress: false",
			"CachePolicyId: 658327ea-f89d-4fab-a63d-7e88639e58f6 # Managed-CachingOptimized\n            OriginRequestPolicyId: " + withCF + "\n            Compress: false"}}},
		{want: "cf.origin-request", edits: []edit{{tpl, "OriginRequestPolicyId: " + withCF, "OriginRequestPolicyId: " + allViewer}}},
		{want: "cf.origin-request", edits: []edit{{tpl, "OriginRequestPolicyId: " + withCF, "OriginRequestPolicyId: b689b0a8-53d0-40ab-baf2-68738e2966ac"}}},
		{want: "cf.methods", edits: []edit{{tpl, "            TargetOriginId: gateway\n            ViewerProtocolPolicy: https-only\n            AllowedMethods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]", "            TargetOriginId: gateway\n            ViewerProtocolPolicy: https-only\n            AllowedMethods: [GET, HEAD, OPTIONS]"}}},
		{want: "cf.viewer", edits: []edit{{tpl, "ViewerProtocolPolicy: https-only # a redirect would drop POST bodies", "ViewerProtocolPolicy: redirect-to-https"}}},
		{want: "cf.viewer", edits: []edit{{tpl, "Compress: false # provider answers", "Compress: true # provider answers"}}},
		{want: "cf.routes", edits: []edit{{tpl, "PathPattern: /platform/api/*", "PathPattern: /platform/api/global/*"}}},
		{want: "cf.routes", edits: []edit{{tpl, "          - PathPattern: /trueportai-services/*\n            TargetOriginId: gateway\n", "          - PathPattern: /trueportai-services/*\n            TargetOriginId: platform\n"}}},
		{want: "cf.internal", edits: []edit{{tpl, "PathPattern: /trueportai-services/*", "PathPattern: /*"}}},
		{want: "cf.internal", edits: []edit{{tpl, "return { statusCode: 404, statusDescription: 'Not Found' };", "return event.request;"}}},
		{want: "cf.timeouts", edits: []edit{{tpl, "    Default: 180\n", "    Default: 60\n"}}},
		{want: "cf.timeouts", edits: []edit{{tpl, "OriginKeepaliveTimeout: 60 #", "OriginKeepaliveTimeout: 5 #"}}},
		{want: "cf.timeouts", edits: []edit{{tpl, "OriginReadTimeout: 30 #", "OriginReadTimeout: 10 #"}}},
	}
	runBrokenCases(t, cases, func(repo Repo) *Report { return CheckCloudFront(context.Background(), repo) })
}
