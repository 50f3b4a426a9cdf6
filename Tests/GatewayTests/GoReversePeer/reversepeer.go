// reversepeer: the reference's reverse-session wire format (ocm-reference.md §6.2), played by
// a Go program on hashicorp/yamux for codexpool's interop tests.
//
//	reversepeer -mode connector -addr host:port -token K
//	    dials the receiver, sends the exact upgrade request, runs yamux as server and serves
//	    HTTP/1.1 on every accepted stream (like the reference's connector). Prints "CONNECTED"
//	    after the 101 and "REQUEST <method> <uri> host=<host> auth=<authorization>" per request.
//	    /v1/responses answers an SSE stream whose text is "Hello from the go connector.";
//	    /ocm/v1/status answers a fixed status (plus ?watch=true: the same line, kept open).
//	reversepeer -mode receiver -token K
//	    listens on 127.0.0.1:0, prints "LISTENING <port>", accepts one connector, prints the
//	    upgrade request it got as "HANDSHAKE <Go-quoted bytes>", checks the token, answers the
//	    exact 101 in the same write as yamux's first frame (one TCP segment), waits for a line on
//	    standard input, then sends GET /ocm/v1/status and POST /v1/responses through streams as
//	    yamux client and prints
//	    "RESULT status=<code> <body>" and "RESULT responses=<code> <body>".
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

const switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\n\r\n"

// The status the connector reports: what the receiver should learn.
const status = `{"five_hour_utilization":12.5,"five_hour_reset":0,"weekly_utilization":40,"weekly_reset":0,"plan_weight":7}`

func config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = 15 * time.Second
	c.ConnectionWriteTimeout = 10 * time.Second
	c.MaxStreamWindowSize = 512 * 1024
	c.LogOutput = ioutil.Discard
	return c
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

var printLock sync.Mutex

func say(format string, args ...interface{}) {
	printLock.Lock()
	defer printLock.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	mode := flag.String("mode", "connector", "connector or receiver")
	addr := flag.String("addr", "", "receiver address (connector)")
	token := flag.String("token", "", "reverse token")
	flag.Parse()
	if *mode == "connector" {
		connector(*addr, *token)
	} else {
		receiver(*token)
	}
}

// bufferedConn reads through the reader that consumed the 101, so frames that arrived in the
// same segment reach yamux first (§6.2 step 5).
type bufferedConn struct {
	net.Conn
	reader *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.reader.Read(p) }

func connector(addr, token string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fail("dial: %v", err)
	}
	request := "GET /ocm/v1/reverse HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: reverse-proxy\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		fail("write: %v", err)
	}
	reader := bufio.NewReader(conn)
	line, err := reader.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101") {
		fail("unexpected upgrade response: %q %v", line, err)
	}
	for {
		header, err := reader.ReadString('\n')
		if err != nil {
			fail("read headers: %v", err)
		}
		if header == "\r\n" {
			break
		}
	}
	session, err := yamux.Server(bufferedConn{conn, reader}, config())
	if err != nil {
		fail("session: %v", err)
	}
	say("CONNECTED")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		say("REQUEST %s %s host=%s auth=%s", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Authorization"))
		switch r.URL.Path {
		case "/ocm/v1/status":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, status+"\n")
			if r.URL.Query().Get("watch") == "true" {
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}
		case "/v1/responses":
			io.Copy(ioutil.Discard, r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Codex-Primary-Used-Percent", "12.5")
			w.Header().Set("X-OCM-Plan-Weight", "7")
			io.WriteString(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hello from the go connector.\"}\n\n")
			io.WriteString(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_go\",\"model\":\"gpt-5.5\",\"usage\":{\"input_tokens\":3,\"output_tokens\":5,\"total_tokens\":8}}}\n\n")
		default:
			http.Error(w, "not found", http.StatusNotFound)
		}
	})
	// The session is the listener, as in the reference's connector; Serve ends with it.
	http.Serve(session, handler)
	say("CLOSED")
}

// firstWriteConn sends the 101 together with yamux's first frame.
type firstWriteConn struct {
	net.Conn
	prefix []byte
	once   sync.Once
}

func (c *firstWriteConn) Write(p []byte) (int, error) {
	written := false
	var n int
	var err error
	c.once.Do(func() {
		written = true
		_, err = c.Conn.Write(append(append([]byte{}, c.prefix...), p...))
		n = len(p)
	})
	if written {
		return n, err
	}
	return c.Conn.Write(p)
}

func receiver(token string) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	say("LISTENING %d", listener.Addr().(*net.TCPAddr).Port)
	conn, err := listener.Accept()
	if err != nil {
		fail("accept: %v", err)
	}
	reader := bufio.NewReader(conn)
	var handshake bytes.Buffer
	for {
		line, err := reader.ReadString('\n')
		if err != nil {
			fail("read handshake: %v", err)
		}
		handshake.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	say("HANDSHAKE %s", strconv.Quote(handshake.String()))
	if !strings.Contains(handshake.String(), "\r\nAuthorization: Bearer "+token+"\r\n") {
		io.WriteString(conn, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
		fail("wrong token")
	}
	session, err := yamux.Client(bufferedConn{&firstWriteConn{Conn: conn, prefix: []byte(switching)}, reader}, config())
	if err != nil {
		fail("session: %v", err)
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return session.Open() },
	}}
	get, _ := http.NewRequest("GET", "http://reverse-proxy/ocm/v1/status", nil)
	get.Header.Set("Authorization", "Bearer "+token)
	report("status", client, get)
	post, _ := http.NewRequest("POST", "http://reverse-proxy/v1/responses",
		strings.NewReader(`{"model":"gpt-5.5","stream":true,"store":false,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}`))
	post.Header.Set("Authorization", "Bearer "+token)
	post.Header.Set("Content-Type", "application/json")
	post.Header.Set("session-id", "go-receiver")
	report("responses", client, post)
	session.Close()
}

func report(name string, client *http.Client, request *http.Request) {
	response, err := client.Do(request)
	if err != nil {
		say("RESULT %s=error %v", name, err)
		return
	}
	body, _ := ioutil.ReadAll(response.Body)
	response.Body.Close()
	say("RESULT %s=%d %s", name, response.StatusCode, strconv.Quote(string(body)))
}
