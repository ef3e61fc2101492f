// Command testcontrol runs a whole tailnet's coordination on loopback, for
// inkcast's tests: Tailscale's own test control server
// (tailscale.com/tstest/integration/testcontrol), an in-process DERP relay and a
// STUN responder, all on 127.0.0.1. It prints one JSON line on stdout with its
// addresses, then serves until killed (or until stdin closes, with -exit-on-eof).
//
// Beside the control protocol it serves a small admin API for tests:
//
//	GET  /inkcast/nodes                         the nodes, as JSON
//	POST /inkcast/tags?node=HOST&tags=tag:a,... set a node's ACL tags
//	POST /inkcast/remove?node=HOST              delete a node
//	POST /inkcast/complete-auth?url=AUTHURL     approve an interactive login
//	GET  /auth/...                              a login URL: visiting approves it
//
// testcontrol keeps every node forever; this command adds what the real
// control plane does with ephemeral nodes: a node that logs out is deleted, and
// an ephemeral node is deleted once its map stream has been gone for
// -ephemeral-grace.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

type control struct {
	srv   *testcontrol.Server
	logf  logger.Logf
	grace time.Duration

	mu        sync.Mutex
	ephemeral map[key.NodePublic]bool
	streams   map[key.NodePublic]int
	timers    map[key.NodePublic]*time.Timer

	// Access to testcontrol's node table, which it has no API to delete from.
	nodesMu *sync.Mutex
	nodes   *map[key.NodePublic]*tailcfg.Node
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "control server address (loopback only)")
	authKey := flag.String("authkey", "", "if set, nodes must present this auth key")
	interactive := flag.Bool("interactive", false, "nodes must log in through a URL (GET it or POST /inkcast/complete-auth)")
	sameUser := flag.Bool("same-user", false, "all nodes belong to one user")
	domain := flag.String("magicdns-domain", "inkcast.test", "MagicDNS domain of node names")
	grace := flag.Duration("ephemeral-grace", time.Second, "delete an ephemeral node this long after its map stream ends")
	verbose := flag.Bool("v", false, "log everything testcontrol logs")
	exitOnEOF := flag.Bool("exit-on-eof", false, "exit when stdin closes (so a dead parent leaves no server behind)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if ip, perr := netip.ParseAddr(host); err != nil || perr != nil || !ip.IsLoopback() {
		log.Fatalf("testcontrol: -listen %q: must be a loopback IP and port", *listen)
	}
	if *exitOnEOF {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}

	errLog := log.New(os.Stderr, "testcontrol: ", log.Lmicroseconds)
	logf := func(format string, args ...any) { errLog.Printf(format, args...) }
	quiet := logger.Logf(func(string, ...any) {})
	ctlLogf := quiet
	if *verbose {
		ctlLogf = logf
	}

	derpMap, derpURL, stunAddr := runDERPAndSTUN(host, quiet)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("testcontrol: listen: %v", err)
	}
	baseURL := "http://" + ln.Addr().String()

	c := &control{
		logf:      logf,
		grace:     *grace,
		ephemeral: map[key.NodePublic]bool{},
		streams:   map[key.NodePublic]int{},
		timers:    map[key.NodePublic]*time.Timer{},
	}
	c.srv = &testcontrol.Server{
		Logf:             ctlLogf,
		DERPMap:          derpMap,
		RequireAuthKey:   *authKey,
		RequireAuth:      *interactive,
		AllNodesSameUser: *sameUser,
		MagicDNSDomain:   *domain,
		ExplicitBaseURL:  baseURL,
		AllOnline:        true,
		// testcontrol logs each RegisterRequest through the standard logger when
		// Verbose; registerSpy reads them to learn about ephemeral nodes and logouts.
		Verbose:        true,
		HoldMapRequest: c.holdMapRequest,
	}
	log.SetFlags(0)
	log.SetOutput(&registerSpy{c: c, verbose: *verbose, out: os.Stderr})
	c.bindNodeTable()

	mux := http.NewServeMux()
	mux.HandleFunc("/inkcast/nodes", c.serveNodes)
	mux.HandleFunc("/inkcast/tags", c.serveTags)
	mux.HandleFunc("/inkcast/remove", c.serveRemove)
	mux.HandleFunc("/inkcast/complete-auth", c.serveCompleteAuth)
	mux.HandleFunc("/auth/", c.serveAuthPage)
	mux.Handle("/", c.srv)

	hs := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	info := map[string]any{
		"control_url": baseURL,
		"derp_url":    derpURL,
		"stun":        stunAddr,
		"pid":         os.Getpid(),
	}
	line, _ := json.Marshal(info)
	fmt.Println(string(line))
	os.Stdout.Sync()
	if err := hs.Serve(ln); err != nil {
		log.Fatalf("testcontrol: serve: %v", err)
	}
}

func runDERPAndSTUN(host string, logf logger.Logf) (*tailcfg.DERPMap, string, string) {
	d := derpserver.New(key.NewNode(), logf)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		log.Fatalf("testcontrol: derp listen: %v", err)
	}
	hs := httptest.NewUnstartedServer(derpserver.Handler(d))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()

	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		log.Fatalf("testcontrol: stun listen: %v", err)
	}
	go serveSTUN(pc)
	stunPort := pc.LocalAddr().(*net.UDPAddr).Port

	m := &tailcfg.DERPMap{
		Regions: map[int]*tailcfg.DERPRegion{
			1: {
				RegionID:   1,
				RegionCode: "loopback",
				RegionName: "inkcast test (loopback)",
				Nodes: []*tailcfg.DERPNode{{
					Name:             "1a",
					RegionID:         1,
					HostName:         host,
					IPv4:             host,
					IPv6:             "none",
					STUNPort:         stunPort,
					DERPPort:         ln.Addr().(*net.TCPAddr).Port,
					InsecureForTests: true,
					STUNTestIP:       host,
				}},
			},
		},
	}
	return m, hs.URL, pc.LocalAddr().String()
}

// serveSTUN answers STUN binding requests with the address they came from.
func serveSTUN(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		txid, err := stun.ParseBindingRequest(buf[:n])
		if err != nil {
			continue
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort()
		pc.WriteTo(stun.Response(txid, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())), addr)
	}
}

// bindNodeTable finds testcontrol's private node map and its mutex, checking
// their types, so that nodes can be deleted. Without them, deletion is off.
func (c *control) bindNodeTable() {
	v := reflect.ValueOf(c.srv).Elem()
	mu := v.FieldByName("mu")
	nodes := v.FieldByName("nodes")
	if !mu.IsValid() || !nodes.IsValid() ||
		mu.Type() != reflect.TypeOf(sync.Mutex{}) ||
		nodes.Type() != reflect.TypeOf(map[key.NodePublic]*tailcfg.Node{}) {
		c.logf("node deletion unavailable: testcontrol.Server has changed shape")
		return
	}
	c.nodesMu = (*sync.Mutex)(unsafe.Pointer(mu.UnsafeAddr()))
	c.nodes = (*map[key.NodePublic]*tailcfg.Node)(unsafe.Pointer(nodes.UnsafeAddr()))
}

func (c *control) removeNode(k key.NodePublic, why string) bool {
	if c.nodes == nil {
		return false
	}
	c.nodesMu.Lock()
	n, ok := (*c.nodes)[k]
	delete(*c.nodes, k)
	c.nodesMu.Unlock()
	c.mu.Lock()
	delete(c.ephemeral, k)
	if t := c.timers[k]; t != nil {
		t.Stop()
		delete(c.timers, k)
	}
	c.mu.Unlock()
	if !ok {
		return false
	}
	c.logf("removed node %s (%s): %s", n.Hostinfo.Hostname(), k.ShortString(), why)
	// UpdateNode sends a fresh netmap, now without the node, to every client.
	if rest := c.srv.AllNodes(); len(rest) > 0 {
		c.srv.UpdateNode(rest[0])
	}
	return true
}

func (c *control) holdMapRequest(req *tailcfg.MapRequest) func() {
	if !req.Stream {
		return nil
	}
	k := req.NodeKey
	c.mu.Lock()
	c.streams[k]++
	if t := c.timers[k]; t != nil {
		t.Stop()
		delete(c.timers, k)
	}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.streams[k]--
		if c.streams[k] > 0 || !c.ephemeral[k] {
			return
		}
		c.timers[k] = time.AfterFunc(c.grace, func() {
			c.mu.Lock()
			gone := c.streams[k] == 0
			c.mu.Unlock()
			if gone {
				c.removeNode(k, "ephemeral node went away")
			}
		})
	}
}

// registerSpy receives the standard logger's output; testcontrol writes each
// RegisterRequest there as "Got tailcfg.RegisterRequest: {json}".
type registerSpy struct {
	c       *control
	verbose bool
	out     io.Writer
}

func (w *registerSpy) Write(p []byte) (int, error) {
	text := string(p)
	const prefix = "Got tailcfg.RegisterRequest: "
	if rest, ok := strings.CutPrefix(text, prefix); ok {
		var req tailcfg.RegisterRequest
		if err := json.Unmarshal([]byte(rest), &req); err == nil {
			w.c.onRegister(&req)
		}
		if !w.verbose {
			return len(p), nil
		}
	}
	return w.out.Write(p)
}

func (c *control) onRegister(req *tailcfg.RegisterRequest) {
	k := req.NodeKey
	if req.Ephemeral {
		c.mu.Lock()
		c.ephemeral[k] = true
		c.mu.Unlock()
	}
	if !req.Expiry.IsZero() && req.Expiry.Before(time.Now()) {
		// A logout. testcontrol answers it (and would re-create the node while
		// doing so), so delete once its handler is done.
		time.AfterFunc(200*time.Millisecond, func() { c.removeNode(k, "logged out") })
	}
}

type nodeInfo struct {
	ID        int64    `json:"id"`
	StableID  string   `json:"stable_id"`
	Name      string   `json:"name"`
	Hostname  string   `json:"hostname"`
	NodeKey   string   `json:"node_key"`
	Addresses []string `json:"addresses"`
	Tags      []string `json:"tags"`
	User      int64    `json:"user"`
	Ephemeral bool     `json:"ephemeral"`
	Streams   int      `json:"streams"`
}

func (c *control) serveNodes(w http.ResponseWriter, r *http.Request) {
	out := []nodeInfo{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.srv.AllNodes() {
		info := nodeInfo{
			ID:        int64(n.ID),
			StableID:  string(n.StableID),
			Name:      n.Name,
			Hostname:  n.Hostinfo.Hostname(),
			NodeKey:   n.Key.String(),
			Tags:      append([]string{}, n.Tags...),
			User:      int64(n.User),
			Ephemeral: c.ephemeral[n.Key],
			Streams:   c.streams[n.Key],
		}
		for _, a := range n.Addresses {
			info.Addresses = append(info.Addresses, a.Addr().String())
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (c *control) findNode(name string) *tailcfg.Node {
	for _, n := range c.srv.AllNodes() {
		if n.Hostinfo.Hostname() == name || strings.TrimSuffix(n.Name, ".") == name || n.Key.String() == name {
			return n
		}
	}
	return nil
}

func (c *control) serveTags(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST required", http.StatusMethodNotAllowed)
		return
	}
	n := c.findNode(r.FormValue("node"))
	if n == nil {
		http.Error(w, "no such node", http.StatusNotFound)
		return
	}
	var tags []string
	for _, t := range strings.Split(r.FormValue("tags"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			if !strings.HasPrefix(t, "tag:") {
				http.Error(w, "tags look like tag:name", http.StatusBadRequest)
				return
			}
			tags = append(tags, t)
		}
	}
	n.Tags = tags
	c.srv.UpdateNode(n)
	c.logf("node %s tagged %v", n.Hostinfo.Hostname(), tags)
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) serveRemove(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST required", http.StatusMethodNotAllowed)
		return
	}
	n := c.findNode(r.FormValue("node"))
	if n == nil || !c.removeNode(n.Key, "removed by admin") {
		http.Error(w, "no such node (or deletion unavailable)", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) serveCompleteAuth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST required", http.StatusMethodNotAllowed)
		return
	}
	if !c.srv.CompleteAuth(r.FormValue("url")) {
		http.Error(w, "unknown login URL", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) serveAuthPage(w http.ResponseWriter, r *http.Request) {
	if !c.srv.CompleteAuth(r.URL.Path) {
		http.Error(w, "unknown login URL", http.StatusNotFound)
		return
	}
	io.WriteString(w, "Logged in. You can close this page.\n")
}
