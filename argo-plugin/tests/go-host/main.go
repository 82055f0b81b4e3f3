// Command argohost drives a traffic-router plugin exactly as the Argo Rollouts controller does:
// HashiCorp go-plugin (net/rpc), Dispense("RpcTrafficRouterPlugin"), then every Plugin.* method
// with gob-encoded arguments shaped like Argo's v1alpha1 types (stand-ins: gob matches by field
// name, so these produce the same stream as Argo's types for the fields they have).
//
// Usage:
//
//	argohost PLUGIN_BINARY [PLUGIN_ARGS...]   (args as in argo-rollouts-config)
//	argohost -fixtures DIR   (writes the recorded gob streams the Rust unit tests decode)
//
// It launches the plugin, runs the fixed checks (every method but VerifyWeight, errors,
// concurrency, a large request), prints "ready" on stdout, then reads commands from stdin, one
// per line, so that the test driving it can change what the plugin reads in between:
//
//	verify WEIGHT [SERVICE:HASH:WEIGHT ...]  calls Plugin.VerifyWeight, prints one JSON line
//	                                         {"verified":N,"error":"…","callError":"…"}
//	quit (or end of input)                   Kill()s the plugin (Control.Quit) and checks it exited
//
// Check results go to stderr; exits non-zero on any failed check. Built in GOPATH mode from
// Debian packages.
package main

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
)

// ---- stand-ins for k8s.io/apimachinery and k8s.io/api ----

type Time struct{ time.Time } // GobEncoder through the embedded time.Time, like metav1.Time

type Format string

type Quantity struct { // resource.Quantity: only Format is exported, the amount never travels
	amount string
	Format
}

type IntOrString struct {
	Type   int64
	IntVal int32
	StrVal string
}

type TypeMeta struct {
	Kind       string
	APIVersion string
}

type OwnerReference struct {
	APIVersion string
	Kind       string
	Name       string
	UID        string
	Controller *bool
}

type FieldsV1 struct{ Raw []byte }

type ManagedFieldsEntry struct {
	Manager    string
	Operation  string
	APIVersion string
	Time       *Time
	FieldsType string
	FieldsV1   *FieldsV1
}

type ObjectMeta struct {
	Name              string
	GenerateName      string
	Namespace         string
	UID               string
	ResourceVersion   string
	Generation        int64
	CreationTimestamp Time
	DeletionTimestamp *Time
	Labels            map[string]string
	Annotations       map[string]string
	OwnerReferences   []OwnerReference
	Finalizers        []string
	ManagedFields     []ManagedFieldsEntry
}

type LabelSelector struct {
	MatchLabels map[string]string
}

type ResourceList map[string]Quantity

type ResourceRequirements struct {
	Limits   ResourceList
	Requests ResourceList
}

type ContainerPort struct {
	Name          string
	ContainerPort int32
	Protocol      string
}

type Container struct {
	Name      string
	Image     string
	Ports     []ContainerPort
	Resources ResourceRequirements
}

type PodSpec struct {
	Containers []Container
}

type PodTemplateSpec struct {
	ObjectMeta
	Spec PodSpec
}

// ---- stand-ins for argo-rollouts v1alpha1 ----

type StringMatch struct {
	Exact  string
	Prefix string
	Regex  string
}

type HeaderRoutingMatch struct {
	HeaderName  string
	HeaderValue *StringMatch
}

type SetHeaderRoute struct {
	Name  string
	Match []HeaderRoutingMatch
}

type RouteMatch struct {
	Method  *StringMatch
	Path    *StringMatch
	Headers map[string]StringMatch
}

type SetMirrorRoute struct {
	Name       string
	Match      []RouteMatch
	Percentage *int32
}

type RolloutPause struct{ Duration *IntOrString }

type SetCanaryScale struct {
	Weight             *int32
	Replicas           *int32
	MatchTrafficWeight bool
}

type RolloutExperimentTemplate struct {
	Name     string
	SpecRef  string
	Replicas *int32
	Weight   *int32
}

type RolloutExperimentStep struct {
	Templates []RolloutExperimentTemplate
	Duration  string
}

type CanaryStep struct {
	SetWeight      *int32
	Pause          *RolloutPause
	Experiment     *RolloutExperimentStep
	SetCanaryScale *SetCanaryScale
	SetHeaderRoute *SetHeaderRoute
	SetMirrorRoute *SetMirrorRoute
}

type MangedRoutes struct{ Name string }

type RolloutTrafficRouting struct {
	ManagedRoutes    []MangedRoutes
	Plugins          map[string]json.RawMessage
	MaxTrafficWeight *int32
}

type PingPongSpec struct {
	PingService string
	PongService string
}

type CanaryStrategy struct {
	CanaryService              string
	StableService              string
	Steps                      []CanaryStep
	TrafficRouting             *RolloutTrafficRouting
	MaxUnavailable             *IntOrString
	MaxSurge                   *IntOrString
	AbortScaleDownDelaySeconds *int32
	DynamicStableScale         bool
	PingPong                   *PingPongSpec
	MinPodsPerReplicaSet       *int32
}

type RolloutStrategy struct {
	Canary *CanaryStrategy
}

type RolloutSpec struct {
	TemplateResolvedFromRef bool
	Replicas                *int32
	Selector                *LabelSelector
	Template                PodTemplateSpec
	Strategy                RolloutStrategy
	RevisionHistoryLimit    *int32
	RestartAt               *Time
}

type WeightDestination struct {
	Weight          int32
	ServiceName     string
	PodTemplateHash string
}

type TrafficWeights struct {
	Canary     WeightDestination
	Stable     WeightDestination
	Additional []WeightDestination
	Verified   *bool
}

type CanaryStatus struct {
	CurrentExperiment string
	Weights           *TrafficWeights
	StablePingPong    string
}

type BlueGreenStatus struct{ ActiveSelector string }

type RolloutCondition struct {
	Type               string
	Status             string
	LastUpdateTime     Time
	LastTransitionTime Time
	Reason             string
	Message            string
}

type ALBStatus struct{ Ingress string }

type RolloutStatus struct {
	Abort              bool
	CurrentPodHash     string
	Replicas           int32
	CurrentStepIndex   *int32
	ObservedGeneration string
	Conditions         []RolloutCondition
	Canary             CanaryStatus
	BlueGreen          BlueGreenStatus
	HPAReplicas        int32
	StableRS           string
	PromoteFull        bool
	Phase              string
	ALBs               []ALBStatus
}

type Rollout struct {
	TypeMeta
	ObjectMeta
	Spec   RolloutSpec
	Status RolloutStatus
}

// ---- rpc.go argument and reply types, registered under Argo's names ----

type UpdateHashArgs struct {
	Rollout                Rollout
	CanaryHash             string
	StableHash             string
	AdditionalDestinations []WeightDestination
}

type SetWeightAndVerifyWeightArgs struct {
	Rollout                Rollout
	DesiredWeight          int32
	AdditionalDestinations []WeightDestination
}

type SetHeaderArgs struct {
	Rollout        Rollout
	SetHeaderRoute SetHeaderRoute
}

type SetMirrorArgs struct {
	Rollout        Rollout
	SetMirrorRoute SetMirrorRoute
}

type RemoveManagedRoutesArgs struct{ Rollout Rollout }

type RpcError struct{ ErrorString string }

type VerifyWeightResponse struct {
	Verified int32
	Err      RpcError
}

func init() {
	gob.RegisterName("UpdateHashArgs", new(UpdateHashArgs))
	gob.RegisterName("SetWeightAndVerifyWeightArgs", new(SetWeightAndVerifyWeightArgs))
	gob.RegisterName("SetHeaderArgs", new(SetHeaderArgs))
	gob.RegisterName("SetMirrorArgs", new(SetMirrorArgs))
	gob.RegisterName("RemoveManagedRoutesArgs", new(RemoveManagedRoutesArgs))
	gob.RegisterName("RpcError", new(RpcError))
}

// ---- the go-plugin plumbing, as Argo's RpcTrafficRouterPlugin ----

type trafficRouterRPC struct{ client *rpc.Client }

type rpcTrafficRouterPlugin struct{}

func (rpcTrafficRouterPlugin) Server(*plugin.MuxBroker) (interface{}, error) {
	return nil, fmt.Errorf("host only")
}

func (rpcTrafficRouterPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return &trafficRouterRPC{client: c}, nil
}

// ---- the test ----

func i32(v int32) *int32 { return &v }

func at(s string) Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return Time{t}
}

func rollout(annotations int) Rollout {
	created := at("2024-05-06T07:08:09Z")
	restart := at("2024-05-07T00:00:00Z")
	yes := true
	ann := map[string]string{"rollout.argoproj.io/revision": "2"}
	for i := 0; i < annotations; i++ {
		ann[fmt.Sprintf("example.com/a%05d", i)] = strings.Repeat("x", 100)
	}
	return Rollout{
		TypeMeta: TypeMeta{Kind: "Rollout", APIVersion: "argoproj.io/v1alpha1"},
		ObjectMeta: ObjectMeta{
			Name: "shop", Namespace: "prod", UID: "8f3e1f8a-1111-4c4c-9d9d-123456789abc",
			ResourceVersion: "4242", Generation: 2, CreationTimestamp: created,
			Labels:          map[string]string{"app": "shop"},
			Annotations:     ann,
			OwnerReferences: []OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Owner", Name: "o", UID: "u", Controller: &yes}},
			ManagedFields: []ManagedFieldsEntry{{Manager: "kubectl", Operation: "Update", APIVersion: "argoproj.io/v1alpha1",
				Time: &created, FieldsType: "FieldsV1", FieldsV1: &FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
		},
		Spec: RolloutSpec{
			Replicas: i32(5),
			Selector: &LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
			Template: PodTemplateSpec{
				ObjectMeta: ObjectMeta{Labels: map[string]string{"app": "shop"}},
				Spec: PodSpec{Containers: []Container{{
					Name: "shop", Image: "registry.example.com/shop:2.0",
					Ports: []ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}},
					Resources: ResourceRequirements{
						Limits:   ResourceList{"cpu": Quantity{amount: "500m", Format: "DecimalSI"}},
						Requests: ResourceList{"memory": Quantity{amount: "128Mi", Format: "BinarySI"}},
					},
				}}},
			},
			Strategy: RolloutStrategy{Canary: &CanaryStrategy{
				CanaryService: "shop-canary", StableService: "shop-stable",
				Steps: []CanaryStep{
					{SetWeight: i32(20)},
					{Pause: &RolloutPause{Duration: &IntOrString{Type: 1, StrVal: "1m"}}},
					{SetHeaderRoute: &SetHeaderRoute{Name: "header-route", Match: []HeaderRoutingMatch{{HeaderName: "X-Canary", HeaderValue: &StringMatch{Exact: "yes"}}}}},
					{SetMirrorRoute: &SetMirrorRoute{Name: "mirror-route", Percentage: i32(35), Match: []RouteMatch{{Method: &StringMatch{Exact: "GET"}, Path: &StringMatch{Prefix: "/"}}}}},
					{Experiment: &RolloutExperimentStep{Templates: []RolloutExperimentTemplate{{Name: "exp", SpecRef: "canary", Weight: i32(10)}}}},
					{SetCanaryScale: &SetCanaryScale{Replicas: i32(2)}},
					{SetWeight: i32(0)},
					{Pause: &RolloutPause{}},
				},
				TrafficRouting: &RolloutTrafficRouting{
					ManagedRoutes:    []MangedRoutes{{Name: "header-route"}, {Name: "mirror-route"}},
					Plugins:          map[string]json.RawMessage{"rollout-router/traffic": json.RawMessage(`{"istio":{"virtualService":{"name":"shop","routes":["primary"]}}}`)},
					MaxTrafficWeight: i32(100),
				},
				MaxSurge:                   &IntOrString{Type: 1, StrVal: "25%"},
				MaxUnavailable:             &IntOrString{IntVal: 1},
				AbortScaleDownDelaySeconds: i32(30),
				MinPodsPerReplicaSet:       i32(2),
			}},
			RestartAt: &restart,
		},
		Status: RolloutStatus{
			CurrentPodHash: "7bf84f9696", StableRS: "5d58bd77d4", Replicas: 5, CurrentStepIndex: i32(0),
			ObservedGeneration: "2", HPAReplicas: 5, Phase: "Progressing",
			Conditions: []RolloutCondition{{Type: "Progressing", Status: "True", LastUpdateTime: created, LastTransitionTime: created, Reason: "RolloutUpdated", Message: "updated"}},
			Canary: CanaryStatus{Weights: &TrafficWeights{
				Canary: WeightDestination{Weight: 0, ServiceName: "shop-canary", PodTemplateHash: "7bf84f9696"},
				Stable: WeightDestination{Weight: 100, ServiceName: "shop-stable", PodTemplateHash: "5d58bd77d4"},
			}},
			ALBs: []ALBStatus{{Ingress: "i"}},
		},
	}
}

var failures int

func check(what string, ok bool, detail ...interface{}) {
	if ok {
		fmt.Fprintf(os.Stderr, "ok   %s\n", what)
		return
	}
	failures++
	fmt.Fprintf(os.Stderr, "FAIL %s %v\n", what, detail)
}

func call(c *rpc.Client, method string, args interface{}, reply interface{}) error {
	// Exactly as Argo: the argument is an interface variable passed by address.
	var a interface{} = args
	if args == nil {
		return c.Call(method, new(interface{}), reply)
	}
	return c.Call(method, &a, reply)
}

// verifyResult is one "verify" command's answer, printed as a JSON line on stdout.
type verifyResult struct {
	Verified  int32  `json:"verified"`
	Error     string `json:"error"`
	CallError string `json:"callError"`
}

// verify runs one "verify WEIGHT [SERVICE:HASH:WEIGHT ...]" command.
func verify(c *rpc.Client, ro Rollout, fields []string) verifyResult {
	if len(fields) < 1 {
		return verifyResult{CallError: "usage: verify WEIGHT [SERVICE:HASH:WEIGHT ...]"}
	}
	weight, err := strconv.Atoi(fields[0])
	if err != nil {
		return verifyResult{CallError: err.Error()}
	}
	var additional []WeightDestination
	for _, d := range fields[1:] {
		parts := strings.Split(d, ":")
		if len(parts) != 3 {
			return verifyResult{CallError: "destination " + d + " is not SERVICE:HASH:WEIGHT"}
		}
		w, err := strconv.Atoi(parts[2])
		if err != nil {
			return verifyResult{CallError: err.Error()}
		}
		additional = append(additional, WeightDestination{ServiceName: parts[0], PodTemplateHash: parts[1], Weight: int32(w)})
	}
	var vw VerifyWeightResponse
	err = call(c, "Plugin.VerifyWeight", SetWeightAndVerifyWeightArgs{Rollout: ro, DesiredWeight: int32(weight), AdditionalDestinations: additional}, &vw)
	result := verifyResult{Verified: vw.Verified, Error: vw.Err.ErrorString}
	if err != nil {
		result.CallError = err.Error()
	}
	return result
}

// Spec 50 §7.3's stand-in argument, encoded by a fresh process (type ids from 65).
type MiniRollout struct {
	Name      string
	Namespace string
}

type MiniArgs struct {
	Rollout                MiniRollout
	DesiredWeight          int32
	AdditionalDestinations []WeightDestination
}

func encodeInterface(enc *gob.Encoder, v interface{}) {
	if err := enc.Encode(&v); err != nil {
		panic(err)
	}
}

func writeFixtures(dir string) {
	gob.RegisterName("MiniArgs", new(MiniArgs))
	var mini bytes.Buffer
	enc := gob.NewEncoder(&mini)
	args := MiniArgs{Rollout: MiniRollout{Name: "ro", Namespace: "ns"}, DesiredWeight: 60,
		AdditionalDestinations: []WeightDestination{{Weight: 5, ServiceName: "exp-svc", PodTemplateHash: "abc"}}}
	encodeInterface(enc, args)
	args.AdditionalDestinations = nil
	args.DesiredWeight = 10
	encodeInterface(enc, args)
	var full bytes.Buffer
	enc = gob.NewEncoder(&full)
	encodeInterface(enc, UpdateHashArgs{Rollout: rollout(0), CanaryHash: "7bf84f9696", StableHash: "5d58bd77d4",
		AdditionalDestinations: []WeightDestination{{Weight: 10, ServiceName: "shop-exp", PodTemplateHash: "6c8fd9d9f"}}})
	for name, data := range map[string][]byte{"mini_args.gob": mini.Bytes(), "update_hash_args.gob": full.Bytes()} {
		if err := ioutil.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			panic(err)
		}
	}
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-fixtures" {
		writeFixtures(os.Args[2])
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argohost PLUGIN_BINARY [PLUGIN_ARGS...]")
		os.Exit(2)
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "ARGO_ROLLOUTS_RPC_PLUGIN", MagicCookieValue: "trafficrouter"},
		Plugins:         map[string]plugin.Plugin{"RpcTrafficRouterPlugin": &rpcTrafficRouterPlugin{}},
		Cmd:             exec.Command(os.Args[1], os.Args[2:]...),
		Managed:         true,
	})
	defer plugin.CleanupClients()

	rpcClient, err := client.Client()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	raw, err := rpcClient.Dispense("RpcTrafficRouterPlugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dispense:", err)
		os.Exit(1)
	}
	c := raw.(*trafficRouterRPC).client

	var rerr RpcError
	err = call(c, "Plugin.InitPlugin", nil, &rerr)
	check("InitPlugin", err == nil && rerr.ErrorString == "", err, rerr)
	check("Ping", rpcClient.Ping() == nil)

	var typ string
	err = call(c, "Plugin.Type", nil, &typ)
	check("Type", err == nil && typ == "rollout-router", err, typ)

	ro := rollout(0)
	exp := []WeightDestination{{Weight: 10, ServiceName: "shop-exp", PodTemplateHash: "6c8fd9d9f"}}

	rerr = RpcError{}
	err = call(c, "Plugin.UpdateHash", UpdateHashArgs{Rollout: ro, CanaryHash: "7bf84f9696", StableHash: "5d58bd77d4", AdditionalDestinations: exp}, &rerr)
	check("UpdateHash", err == nil && rerr.ErrorString == "", err, rerr)

	rerr = RpcError{}
	err = call(c, "Plugin.SetWeight", SetWeightAndVerifyWeightArgs{Rollout: ro, DesiredWeight: 20, AdditionalDestinations: exp}, &rerr)
	check("SetWeight", err == nil && rerr.ErrorString == "", err, rerr)

	rerr = RpcError{}
	err = call(c, "Plugin.SetHeaderRoute", SetHeaderArgs{Rollout: ro, SetHeaderRoute: SetHeaderRoute{Name: "header-route", Match: []HeaderRoutingMatch{{HeaderName: "X-Canary", HeaderValue: &StringMatch{Prefix: "y"}}}}}, &rerr)
	check("SetHeaderRoute", err == nil && rerr.ErrorString == "", err, rerr)

	rerr = RpcError{}
	err = call(c, "Plugin.SetMirrorRoute", SetMirrorArgs{Rollout: ro, SetMirrorRoute: SetMirrorRoute{Name: "mirror-route", Percentage: i32(35), Match: []RouteMatch{{Method: &StringMatch{Exact: "GET"}, Headers: map[string]StringMatch{"user-agent": {Regex: ".*Firefox.*"}}}}}}, &rerr)
	check("SetMirrorRoute", err == nil && rerr.ErrorString == "", err, rerr)

	rerr = RpcError{}
	err = call(c, "Plugin.RemoveManagedRoutes", RemoveManagedRoutesArgs{Rollout: ro}, &rerr)
	check("RemoveManagedRoutes", err == nil && rerr.ErrorString == "", err, rerr)

	// An unknown method is an rpc error, and the stream stays usable (its body was consumed).
	rerr = RpcError{}
	err = call(c, "Plugin.Bogus", RemoveManagedRoutesArgs{Rollout: ro}, &rerr)
	check("unknown method", err != nil && err.Error() == "rpc: can't find method Plugin.Bogus", err)
	// A known method with the wrong argument type: an rpc error too.
	rerr = RpcError{}
	err = call(c, "Plugin.SetWeight", RemoveManagedRoutesArgs{Rollout: ro}, &rerr)
	check("wrong argument type", err != nil && strings.Contains(err.Error(), "invalid args"), err)
	rerr = RpcError{}
	err = call(c, "Plugin.SetWeight", SetWeightAndVerifyWeightArgs{Rollout: ro, DesiredWeight: 40}, &rerr)
	check("valid call after errors", err == nil && rerr.ErrorString == "", err, rerr)

	// Concurrent calls from many workers on the one client (replies may come out of order).
	var wg sync.WaitGroup
	var mu sync.Mutex
	concurrentOK := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var r RpcError
			var t string
			var err error
			if i%2 == 0 {
				err = call(c, "Plugin.SetWeight", SetWeightAndVerifyWeightArgs{Rollout: ro, DesiredWeight: int32(i)}, &r)
			} else {
				err = call(c, "Plugin.Type", nil, &t)
			}
			if err == nil && r.ErrorString == "" && (i%2 == 0 || t == "rollout-router") {
				mu.Lock()
				concurrentOK++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	check("16 concurrent calls", concurrentOK == 16, concurrentOK)

	// A request over 256 KiB exercises the plugin's receive-window updates.
	big := rollout(3000)
	rerr = RpcError{}
	err = call(c, "Plugin.SetWeight", SetWeightAndVerifyWeightArgs{Rollout: big, DesiredWeight: 20}, &rerr)
	check("request over 256 KiB", err == nil && rerr.ErrorString == "", err, rerr)
	check("Ping after the large request", rpcClient.Ping() == nil)

	// The test driving us changes what the plugin reads between VerifyWeight calls.
	fmt.Println("ready")
	stdin := bufio.NewScanner(os.Stdin)
	for stdin.Scan() {
		fields := strings.Fields(stdin.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "quit" {
			break
		}
		var out interface{}
		if fields[0] == "verify" {
			out = verify(c, ro, fields[1:])
		} else {
			out = verifyResult{CallError: "unknown command " + fields[0]}
		}
		line, _ := json.Marshal(out)
		fmt.Println(string(line))
	}

	// Kill sends Control.Quit: the plugin must be gone quickly (the host SIGKILLs after 2 s).
	start := time.Now()
	client.Kill()
	elapsed := time.Since(start)
	check("Kill returns quickly and the plugin exited", client.Exited() && elapsed < 1500*time.Millisecond, elapsed)

	if failures > 0 {
		fmt.Fprintf(os.Stderr, "%d check(s) failed\n", failures)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "all checks passed")
}
