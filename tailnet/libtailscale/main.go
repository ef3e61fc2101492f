// Command libtailscale is inkcast's build of the libtailscale C API over tsnet,
// compiled with -buildmode=c-shared into libtailscale.so. See tailscale.h for the
// API and for where it differs from Tailscale's own libtailscale.
//
// Handles: a server is a small integer from a registry (not an fd); a connection
// is one end of a socketpair(2) whose other end Go copies to and from the tailnet
// connection; a listener is one end of a SOCK_SEQPACKET socketpair on which Go
// sends each accepted connection's fd (SCM_RIGHTS) with the remote address as
// the message, so the listener is readable exactly when tailscale_accept will
// not block.
package main

/*
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

extern char **environ;
static const char* inkcast_environ_at(int i) { return environ[i]; }
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"tailscale.com/envknob"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/logtail"
	"tailscale.com/net/tsaddr"
	"tailscale.com/tsnet"
	"tailscale.com/types/logger"
)

func main() {}

func init() {
	syncEnviron()
	// Never upload logs to Tailscale's log servers, whatever the environment.
	logtail.Disable()
}

// syncEnviron makes Go see the environment as it is when the library is loaded. The Go
// runtime of a c-shared library copies the environment the process was started with (from
// the initial stack), so variables a host program set before dlopen (Python's os.environ,
// setenv) would otherwise be invisible. Tailscale's knobs (TS_*) were already read by the
// packages' init functions; envknob.Setenv updates them too. Later changes are not seen.
func syncEnviron() {
	seen := map[string]bool{}
	for i := 0; ; i++ {
		p := C.inkcast_environ_at(C.int(i))
		if p == nil {
			break
		}
		k, v, ok := strings.Cut(C.GoString(p), "=")
		if !ok || k == "" {
			continue
		}
		seen[k] = true
		if cur, had := os.LookupEnv(k); !had || cur != v {
			setenv(k, v)
		}
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "" && !seen[k] {
			if strings.HasPrefix(k, "TS_") {
				envknob.Setenv(k, "")
			}
			os.Unsetenv(k)
		}
	}
}

func setenv(k, v string) {
	if strings.HasPrefix(k, "TS_") {
		envknob.Setenv(k, v)
	} else {
		os.Setenv(k, v)
	}
}

const (
	dialWaitRunning = 30 * time.Second
	dialTimeout     = 30 * time.Second
)

type server struct {
	mu      sync.Mutex // guards the fields below and serialises start/close
	ts      *tsnet.Server
	lastErr string
	started bool
	closed  bool
	logFile *os.File
	ctx     context.Context
	cancel  context.CancelFunc
}

var registry struct {
	mu      sync.Mutex
	next    C.int
	servers map[C.int]*server
}

type listenerState struct {
	srv     *server
	ln      net.Listener
	goSide  *net.UnixConn
	mu      sync.Mutex
	remotes map[C.int]string // accepted conn fd (as received by C) -> remote ip:port
}

var listeners struct {
	mu sync.Mutex
	m  map[C.int]*listenerState
}

func lookup(sd C.int) *server {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return registry.servers[sd]
}

func (s *server) fail(err error) C.int {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
	return -1
}

func (s *server) ok() C.int {
	s.mu.Lock()
	s.lastErr = ""
	s.mu.Unlock()
	return 0
}

// guard turns a Go panic inside an exported call into an error result instead of
// killing the host process.
func guard(s *server, rc *C.int, call string) {
	if r := recover(); r != nil {
		msg := fmt.Sprintf("%s: internal panic: %v\n%s", call, r, debug.Stack())
		if s != nil {
			s.mu.Lock()
			s.lastErr = msg
			s.mu.Unlock()
		}
		*rc = -1
	}
}

func writeCString(buf *C.char, buflen C.size_t, text string) C.int {
	if buf == nil || buflen == 0 {
		return C.EINVAL
	}
	out := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(buflen))
	n := copy(out[:len(out)-1], text)
	out[n] = 0
	if n < len(text) {
		return C.ERANGE
	}
	return 0
}

//export tailscale_new
func tailscale_new() C.int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.servers == nil {
		registry.servers = map[C.int]*server{}
		registry.next = 7<<16 + 1
	}
	sd := registry.next
	registry.next++
	ctx, cancel := context.WithCancel(context.Background())
	registry.servers[sd] = &server{ts: &tsnet.Server{}, ctx: ctx, cancel: cancel}
	return sd
}

// configure applies fn to the server's settings, which tsnet allows only before Start.
func configure(sd C.int, call string, fn func(ts *tsnet.Server) error) (rc C.int) {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	defer guard(s, &rc, call)
	s.mu.Lock()
	started, closed := s.started, s.closed
	s.mu.Unlock()
	if closed {
		return s.fail(fmt.Errorf("%s: server is closed", call))
	}
	if started {
		return s.fail(fmt.Errorf("%s: settings cannot change after start", call))
	}
	if err := fn(s.ts); err != nil {
		return s.fail(fmt.Errorf("%s: %w", call, err))
	}
	return s.ok()
}

func requireString(p *C.char, what string) (string, error) {
	if p == nil {
		return "", fmt.Errorf("%s is NULL", what)
	}
	return C.GoString(p), nil
}

// setString is the body of the string setters: a NULL pointer is an error, not a crash.
func setString(sd C.int, call string, p *C.char, what string, required bool, set func(*tsnet.Server, string)) C.int {
	return configure(sd, call, func(ts *tsnet.Server) error {
		v, err := requireString(p, what)
		if err == nil && required && v == "" {
			err = fmt.Errorf("%s is empty", what)
		}
		set(ts, v)
		return err
	})
}

//export tailscale_set_dir
func tailscale_set_dir(sd C.int, dir *C.char) C.int {
	return setString(sd, "tailscale_set_dir", dir, "dir", true, func(ts *tsnet.Server, v string) { ts.Dir = v })
}

//export tailscale_set_hostname
func tailscale_set_hostname(sd C.int, hostname *C.char) C.int {
	return setString(sd, "tailscale_set_hostname", hostname, "hostname", true, func(ts *tsnet.Server, v string) { ts.Hostname = v })
}

//export tailscale_set_authkey
func tailscale_set_authkey(sd C.int, authkey *C.char) C.int {
	return setString(sd, "tailscale_set_authkey", authkey, "authkey", false, func(ts *tsnet.Server, v string) { ts.AuthKey = v })
}

//export tailscale_set_control_url
func tailscale_set_control_url(sd C.int, controlURL *C.char) C.int {
	return setString(sd, "tailscale_set_control_url", controlURL, "control_url", false, func(ts *tsnet.Server, v string) { ts.ControlURL = v })
}

//export tailscale_set_ephemeral
func tailscale_set_ephemeral(sd C.int, ephemeral C.int) C.int {
	return configure(sd, "tailscale_set_ephemeral", func(ts *tsnet.Server) error {
		ts.Ephemeral = ephemeral != 0
		return nil
	})
}

//export tailscale_set_logfd
func tailscale_set_logfd(sd C.int, fd C.int) C.int {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	return configure(sd, "tailscale_set_logfd", func(ts *tsnet.Server) error {
		if fd == -1 {
			ts.Logf = logger.Discard
			ts.UserLogf = logger.Discard
			return nil
		}
		dup, err := syscall.Dup(int(fd))
		if err != nil {
			return fmt.Errorf("dup(%d): %w", fd, err)
		}
		syscall.CloseOnExec(dup)
		f := os.NewFile(uintptr(dup), "tailscale-log")
		var mu sync.Mutex
		logf := func(format string, args ...any) {
			line := fmt.Sprintf(format, args...)
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			mu.Lock()
			f.WriteString(line)
			mu.Unlock()
		}
		s.mu.Lock()
		if s.logFile != nil {
			s.logFile.Close()
		}
		s.logFile = f
		s.mu.Unlock()
		ts.Logf = logf
		ts.UserLogf = logf
		return nil
	})
}

func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("server is closed")
	}
	if s.ts.Dir == "" {
		return errors.New("no state directory: call tailscale_set_dir first")
	}
	if s.ts.Hostname == "" {
		return errors.New("no hostname: call tailscale_set_hostname first")
	}
	s.started = true
	return s.ts.Start()
}

//export tailscale_start
func tailscale_start(sd C.int) (rc C.int) {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	defer guard(s, &rc, "tailscale_start")
	if err := s.start(); err != nil {
		return s.fail(fmt.Errorf("tailscale_start: %w", err))
	}
	return s.ok()
}

//export tailscale_up
func tailscale_up(sd C.int) (rc C.int) {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	defer guard(s, &rc, "tailscale_up")
	if err := s.start(); err != nil {
		return s.fail(fmt.Errorf("tailscale_up: %w", err))
	}
	if _, err := s.ts.Up(s.ctx); err != nil {
		return s.fail(fmt.Errorf("tailscale_up: %w", err))
	}
	return s.ok()
}

//export tailscale_close
func tailscale_close(sd C.int) (rc C.int) {
	registry.mu.Lock()
	s := registry.servers[sd]
	delete(registry.servers, sd)
	registry.mu.Unlock()
	if s == nil {
		return C.EBADF
	}
	defer guard(nil, &rc, "tailscale_close")
	s.cancel() // ends a tailscale_up in progress
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var err error
	if s.started {
		err = s.ts.Close()
	}
	if s.logFile != nil {
		s.logFile.Close()
		s.logFile = nil
	}
	if err != nil {
		return -1
	}
	return 0
}

//export tailscale_errmsg
func tailscale_errmsg(sd C.int, buf *C.char, buflen C.size_t) C.int {
	if buf == nil || buflen == 0 {
		return C.EINVAL
	}
	s := lookup(sd)
	if s == nil {
		writeCString(buf, buflen, "")
		return C.EBADF
	}
	s.mu.Lock()
	msg := s.lastErr
	s.mu.Unlock()
	return writeCString(buf, buflen, msg)
}

//export tailscale_getips
func tailscale_getips(sd C.int, buf *C.char, buflen C.size_t) (rc C.int) {
	if buf == nil || buflen == 0 {
		return C.EINVAL
	}
	s := lookup(sd)
	if s == nil {
		writeCString(buf, buflen, "")
		return C.EBADF
	}
	defer guard(s, &rc, "tailscale_getips")
	s.mu.Lock()
	started := s.started && !s.closed
	s.mu.Unlock()
	var ips []string
	if started {
		ip4, ip6 := s.ts.TailscaleIPs()
		for _, ip := range []netip.Addr{ip4, ip6} {
			if ip.IsValid() {
				ips = append(ips, ip.String())
			}
		}
	}
	return writeCString(buf, buflen, strings.Join(ips, ","))
}

//export tailscale_loopback
func tailscale_loopback(sd C.int, addrOut *C.char, addrLen C.size_t, proxyCredOut *C.char, localAPICredOut *C.char) (rc C.int) {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	if addrOut == nil || addrLen == 0 || proxyCredOut == nil || localAPICredOut == nil {
		return s.fail(errors.New("tailscale_loopback: NULL output buffer"))
	}
	defer guard(s, &rc, "tailscale_loopback")
	*addrOut, *proxyCredOut, *localAPICredOut = 0, 0, 0
	if err := s.start(); err != nil {
		return s.fail(fmt.Errorf("tailscale_loopback: %w", err))
	}
	addr, proxyCred, localCred, err := s.ts.Loopback()
	if err != nil {
		return s.fail(fmt.Errorf("tailscale_loopback: %w", err))
	}
	if len(proxyCred) != 32 || len(localCred) != 32 {
		return s.fail(fmt.Errorf("tailscale_loopback: credentials of %d and %d bytes, want 32", len(proxyCred), len(localCred)))
	}
	if rc := writeCString(addrOut, addrLen, addr); rc != 0 {
		return s.fail(fmt.Errorf("tailscale_loopback: address %q does not fit in %d bytes", addr, addrLen))
	}
	writeCString(proxyCredOut, 33, proxyCred)
	writeCString(localAPICredOut, 33, localCred)
	return s.ok()
}

//export tailscale_enable_funnel_to_localhost_plaintext_http1
func tailscale_enable_funnel_to_localhost_plaintext_http1(sd C.int, port C.int) C.int {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	return s.fail(errors.New("tailscale_enable_funnel_to_localhost_plaintext_http1: not supported by inkcast's libtailscale (nothing on the tablet is exposed)"))
}

// awaitRunning waits until the backend is Running, without starting a login.
func (s *server) awaitRunning(ctx context.Context) (*ipnstate.Status, error) {
	lc, err := s.ts.LocalClient()
	if err != nil {
		return nil, err
	}
	for {
		st, err := lc.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st.BackendState == "Running" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node is not running (state %s): call tailscale_up first", st.BackendState)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// resolveOnTailnet finds host among this tailnet's nodes: a Tailscale IP of a
// peer or of this node, a peer's MagicDNS name (with or without the domain), or
// its hostname. It never asks the system's resolver.
func resolveOnTailnet(st *ipnstate.Status, network, host string) (netip.Addr, error) {
	want6 := strings.HasSuffix(network, "6")
	want4 := strings.HasSuffix(network, "4")
	pick := func(ips []netip.Addr) (netip.Addr, bool) {
		for _, ip := range ips {
			if (want6 && ip.Is6()) || (!want6 && ip.Is4()) {
				return ip, true
			}
		}
		if !want4 && !want6 && len(ips) > 0 {
			return ips[0], true
		}
		return netip.Addr{}, false
	}
	nodes := []*ipnstate.PeerStatus{}
	if st.Self != nil {
		nodes = append(nodes, st.Self)
	}
	for _, p := range st.Peer {
		nodes = append(nodes, p)
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ip = ip.Unmap()
		for _, n := range nodes {
			for _, a := range n.TailscaleIPs {
				if a == ip {
					return ip, nil
				}
			}
		}
		if tsaddr.IsTailscaleIP(ip) {
			return netip.Addr{}, fmt.Errorf("no node on this tailnet has address %s", ip)
		}
		return netip.Addr{}, fmt.Errorf("%s is not a tailnet address (this library dials only nodes of its tailnet)", ip)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "" {
		return netip.Addr{}, errors.New("empty host")
	}
	for _, n := range nodes {
		dns := strings.ToLower(strings.TrimSuffix(n.DNSName, "."))
		short, _, _ := strings.Cut(dns, ".")
		if name == dns || name == short || name == strings.ToLower(n.HostName) {
			if ip, ok := pick(n.TailscaleIPs); ok {
				return ip, nil
			}
			return netip.Addr{}, fmt.Errorf("node %q has no %s address", host, network)
		}
	}
	return netip.Addr{}, fmt.Errorf("no node named %q on this tailnet", host)
}

func validNetwork(network string, udp bool) bool {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return true
	case "udp", "udp4", "udp6":
		return udp
	}
	return false
}

//export tailscale_dial
func tailscale_dial(sd C.int, network, addr *C.char, connOut *C.int) (rc C.int) {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	defer guard(s, &rc, "tailscale_dial")
	if network == nil || addr == nil || connOut == nil {
		return s.fail(errors.New("tailscale_dial: NULL argument"))
	}
	netw, address := C.GoString(network), C.GoString(addr)
	if !validNetwork(netw, true) {
		return s.fail(fmt.Errorf("tailscale_dial: unsupported network %q", netw))
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return s.fail(fmt.Errorf("tailscale_dial: %w", err))
	}
	if err := s.start(); err != nil {
		return s.fail(fmt.Errorf("tailscale_dial: %w", err))
	}
	ctx, cancel := context.WithTimeout(s.ctx, dialWaitRunning)
	st, err := s.awaitRunning(ctx)
	cancel()
	if err != nil {
		return s.fail(fmt.Errorf("tailscale_dial %s: %w", address, err))
	}
	ip, err := resolveOnTailnet(st, netw, host)
	if err != nil {
		return s.fail(fmt.Errorf("tailscale_dial %s: %w", address, err))
	}
	target := net.JoinHostPort(ip.String(), port)
	ctx, cancel = context.WithTimeout(s.ctx, dialTimeout)
	defer cancel()
	c, err := s.ts.Dial(ctx, netw, target)
	if err != nil {
		return s.fail(fmt.Errorf("tailscale_dial %s: %w", address, err))
	}
	fd, err := bridge(c, strings.HasPrefix(netw, "udp"))
	if err != nil {
		c.Close()
		return s.fail(fmt.Errorf("tailscale_dial %s: %w", address, err))
	}
	*connOut = C.int(fd)
	return s.ok()
}

// bridge creates a socketpair, keeps one end in Go copying both ways between it
// and c, and returns the other end's fd for C. For UDP a SOCK_DGRAM pair keeps
// datagram boundaries.
func bridge(c net.Conn, datagram bool) (int, error) {
	kind := syscall.SOCK_STREAM
	if datagram {
		kind = syscall.SOCK_DGRAM
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, kind|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	goFile := os.NewFile(uintptr(fds[1]), "tailscale-conn")
	local, err := net.FileConn(goFile) // dups; the poller owns the copy
	goFile.Close()
	if err != nil {
		syscall.Close(fds[0])
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	go pump(c, local.(*net.UnixConn))
	return fds[0], nil
}

type closeWriter interface{ CloseWrite() error }

// pump copies in both directions, passing half-closes along, and closes both
// ends when both directions are done (or either fails).
func pump(remote net.Conn, local *net.UnixConn) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			remote.Close()
			local.Close()
		})
	}
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		buf := make([]byte, 64<<10)
		_, err := copyBuffer(dst, src, buf)
		if err != nil {
			closeBoth()
		} else if cw, ok := dst.(closeWriter); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go copyHalf(local, remote)
	go copyHalf(remote, local)
	<-done
	<-done
	closeBoth()
}

func copyBuffer(dst, src net.Conn, buf []byte) (int64, error) {
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return total, nil
			}
			return total, rerr
		}
	}
}

//export tailscale_listen
func tailscale_listen(sd C.int, network, addr *C.char, listenerOut *C.int) (rc C.int) {
	s := lookup(sd)
	if s == nil {
		return C.EBADF
	}
	defer guard(s, &rc, "tailscale_listen")
	if network == nil || addr == nil || listenerOut == nil {
		return s.fail(errors.New("tailscale_listen: NULL argument"))
	}
	netw, address := C.GoString(network), C.GoString(addr)
	if !validNetwork(netw, false) {
		return s.fail(fmt.Errorf("tailscale_listen: unsupported network %q (tcp only)", netw))
	}
	if err := s.start(); err != nil {
		return s.fail(fmt.Errorf("tailscale_listen: %w", err))
	}
	ln, err := s.ts.Listen(netw, address)
	if err != nil {
		return s.fail(fmt.Errorf("tailscale_listen %s: %w", address, err))
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		ln.Close()
		return s.fail(fmt.Errorf("tailscale_listen: socketpair: %w", err))
	}
	goFile := os.NewFile(uintptr(fds[1]), "tailscale-listener")
	fc, err := net.FileConn(goFile)
	goFile.Close()
	if err != nil {
		ln.Close()
		syscall.Close(fds[0])
		return s.fail(fmt.Errorf("tailscale_listen: %w", err))
	}
	cfd := C.int(fds[0])
	st := &listenerState{srv: s, ln: ln, goSide: fc.(*net.UnixConn), remotes: map[C.int]string{}}
	listeners.mu.Lock()
	if listeners.m == nil {
		listeners.m = map[C.int]*listenerState{}
	}
	listeners.m[cfd] = st
	listeners.mu.Unlock()

	var once sync.Once
	teardown := func() {
		once.Do(func() {
			ln.Close()
			st.goSide.Close()
			listeners.mu.Lock()
			if listeners.m[cfd] == st {
				delete(listeners.m, cfd)
			}
			listeners.mu.Unlock()
		})
	}
	go func() {
		// C never writes to its end: a read returns when C closes it.
		var b [16]byte
		st.goSide.Read(b[:])
		teardown()
	}()
	go func() {
		defer teardown()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fd, err := bridge(c, false)
			if err != nil {
				c.Close()
				continue
			}
			remote := c.RemoteAddr().String()
			_, _, err = st.goSide.WriteMsgUnix([]byte(remote), syscall.UnixRights(fd), nil)
			syscall.Close(fd) // the receiver has its own copy now, or nobody wants it
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	*listenerOut = cfd
	return s.ok()
}

//export tailscale_accept
func tailscale_accept(listener C.int, connOut *C.int) (rc C.int) {
	listeners.mu.Lock()
	st := listeners.m[listener]
	listeners.mu.Unlock()
	if st == nil {
		return C.EBADF
	}
	defer guard(st.srv, &rc, "tailscale_accept")
	if connOut == nil {
		return st.srv.fail(errors.New("tailscale_accept: NULL conn_out"))
	}
	buf := make([]byte, 256)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := syscall.Recvmsg(int(listener), buf, oob, syscall.MSG_CMSG_CLOEXEC)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return st.srv.fail(fmt.Errorf("tailscale_accept: recvmsg: %w", err))
		}
		if n == 0 && oobn == 0 {
			return C.EBADF // listener closed (its node closed, or tailscale_close)
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			return st.srv.fail(errors.New("tailscale_accept: message without a connection"))
		}
		fds, err := syscall.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			return st.srv.fail(errors.New("tailscale_accept: message without a connection"))
		}
		for _, extra := range fds[1:] {
			syscall.Close(extra)
		}
		st.mu.Lock()
		st.remotes[C.int(fds[0])] = string(buf[:n])
		st.mu.Unlock()
		*connOut = C.int(fds[0])
		return st.srv.ok()
	}
}

//export tailscale_getremoteaddr
func tailscale_getremoteaddr(listener C.int, conn C.int, buf *C.char, buflen C.size_t) C.int {
	if buf == nil || buflen == 0 {
		return C.EINVAL
	}
	listeners.mu.Lock()
	st := listeners.m[listener]
	listeners.mu.Unlock()
	if st == nil {
		writeCString(buf, buflen, "")
		return C.EBADF
	}
	st.mu.Lock()
	remote, ok := st.remotes[conn]
	st.mu.Unlock()
	if !ok {
		writeCString(buf, buflen, "")
		return C.EBADF
	}
	// Like upstream: the address without its port.
	ip := remote
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		ip = ap.Addr().String()
	}
	return writeCString(buf, buflen, ip)
}

//export inkcast_tailnet_version
func inkcast_tailnet_version(buf *C.char, buflen C.size_t) C.int {
	version := "inkcast-libtailscale"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "tailscale.com" {
				version += " tailscale.com@" + dep.Version
			}
		}
	}
	version += " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	return writeCString(buf, buflen, version)
}

// inkcast_tailnet_getenv reports what the Go runtime sees for an environment
// variable (Go copies the environment when the library is loaded).
//
//export inkcast_tailnet_getenv
func inkcast_tailnet_getenv(name *C.char, buf *C.char, buflen C.size_t) C.int {
	if name == nil {
		return C.EINVAL
	}
	v, ok := syscall.Getenv(C.GoString(name))
	if !ok {
		writeCString(buf, buflen, "")
		return C.ENOENT
	}
	return writeCString(buf, buflen, v)
}
