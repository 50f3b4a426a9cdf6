// yamuxpeer: the hashicorp/yamux side of codexpool's interop tests.
//
// Stream protocol: the opener sends an 8-byte big-endian length and that many bytes; the
// acceptor answers with the FNV-1a 64 checksum of the bytes (8 bytes, big-endian) and closes
// its side. The opener may close its own side first (FIN) or wait for the answer.
//
//	yamuxpeer -role server [-tls cert,key] [-backlog N] [-noaccept]
//	    listens on 127.0.0.1:0, prints "LISTENING <port>", serves one connection, then prints
//	    "SUMMARY streams=S ok=O fin_first=F resets=R" when the session ends.
//	yamuxpeer -role client -addr host:port [-tls-ca ca.pem] -streams N -size BYTES
//	    opens N concurrent streams, checks every answer, prints "SUMMARY streams=N ok=O".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"io/ioutil"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

func config(backlog int) *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = backlog
	c.KeepAliveInterval = 15 * time.Second
	c.MaxStreamWindowSize = 512 * 1024
	c.LogOutput = ioutil.Discard
	// The tests check bytes, not speed: on a loaded 2-core CI machine a stream may wait for
	// window longer than yamux's default 10 s, which must not turn into a failure.
	c.ConnectionWriteTimeout = 120 * time.Second
	return c
}

// pattern is the same deterministic byte sequence the Swift tests generate.
func pattern(seed, size int) []byte {
	out := make([]byte, size)
	state := uint32(seed)*2654435761 + 1
	for i := range out {
		state = state*1103515245 + 12345
		out[i] = byte(state >> 16)
	}
	return out
}

var discardOnly bool

func checksum(data []byte) uint64 {
	if discardOnly {
		return 0
	}
	h := fnv.New64a()
	h.Write(data)
	return h.Sum64()
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	role := flag.String("role", "server", "server or client")
	addr := flag.String("addr", "", "address to dial (client)")
	tlsFiles := flag.String("tls", "", "cert.pem,key.pem to serve TLS (server)")
	tlsCA := flag.String("tls-ca", "", "CA file to dial with TLS (client)")
	streams := flag.Int("streams", 100, "streams to open (client)")
	size := flag.Int("size", 65536, "bytes per stream (client)")
	backlog := flag.Int("backlog", 256, "accept backlog (server)")
	noAccept := flag.Bool("noaccept", false, "never accept streams, so the backlog overflows into RST (server)")
	discard := flag.Bool("discard", false, "answer 0 instead of a checksum, for throughput measurements (server)")
	flag.Parse()
	discardOnly = *discard
	if *role == "server" {
		serve(*tlsFiles, *backlog, *noAccept)
	} else {
		dial(*addr, *tlsCA, *streams, *size)
	}
}

func serve(tlsFiles string, backlog int, noAccept bool) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	if tlsFiles != "" {
		parts := strings.Split(tlsFiles, ",")
		certificate, err := tls.LoadX509KeyPair(parts[0], parts[1])
		if err != nil {
			fail("load certificate: %v", err)
		}
		listener = tls.NewListener(listener, &tls.Config{Certificates: []tls.Certificate{certificate}})
	}
	fmt.Printf("LISTENING %d\n", listener.Addr().(*net.TCPAddr).Port)
	conn, err := listener.Accept()
	if err != nil {
		fail("accept: %v", err)
	}
	session, err := yamux.Server(conn, config(backlog))
	if err != nil {
		fail("session: %v", err)
	}
	var total, ok, finFirst, resets int64
	var wg sync.WaitGroup
	if noAccept {
		<-session.CloseChan()
	}
	for !noAccept {
		stream, err := session.AcceptStream()
		if err != nil {
			break
		}
		atomic.AddInt64(&total, 1)
		wg.Add(1)
		go func(stream *yamux.Stream) {
			defer wg.Done()
			defer stream.Close()
			var length uint64
			if err := binary.Read(stream, binary.BigEndian, &length); err != nil {
				atomic.AddInt64(&resets, 1)
				return
			}
			data := make([]byte, length)
			if _, err := io.ReadFull(stream, data); err != nil {
				atomic.AddInt64(&resets, 1)
				return
			}
			// The payload's last byte says whether the opener's FIN follows it ('F') or not ('N').
			if length > 0 && data[length-1] == 'F' {
				one := make([]byte, 1)
				if _, err := stream.Read(one); errors.Is(err, io.EOF) {
					atomic.AddInt64(&finFirst, 1)
				}
			}
			if err := binary.Write(stream, binary.BigEndian, checksum(data)); err == nil {
				atomic.AddInt64(&ok, 1)
			}
		}(stream)
	}
	wg.Wait()
	fmt.Printf("SUMMARY streams=%d ok=%d fin_first=%d resets=%d\n", total, ok, finFirst, resets)
}

func dial(addr, caFile string, streams, size int) {
	var conn net.Conn
	var err error
	if caFile != "" {
		pem, err := ioutil.ReadFile(caFile)
		if err != nil {
			fail("read CA: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		conn, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		fail("dial: %v", err)
	}
	session, err := yamux.Client(conn, config(256))
	if err != nil {
		fail("session: %v", err)
	}
	var ok int64
	var wg sync.WaitGroup
	shared := pattern(0, size)
	start := time.Now()
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(index int) {
			defer wg.Done()
			stream, err := session.OpenStream()
			if err != nil {
				fmt.Fprintf(os.Stderr, "open: %v\n", err)
				return
			}
			defer stream.Close()
			data := shared
			if !discardOnly {
				data = pattern(index, size)
			}
			binary.Write(stream, binary.BigEndian, uint64(len(data)))
			if _, err := stream.Write(data); err != nil {
				fmt.Fprintf(os.Stderr, "write: %v\n", err)
				return
			}
			var answer uint64
			if err := binary.Read(stream, binary.BigEndian, &answer); err != nil {
				fmt.Fprintf(os.Stderr, "read: %v\n", err)
				return
			}
			// The acceptor closes after answering: the next read must be the end of the stream.
			if _, err := stream.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "expected EOF after the answer, got %v\n", err)
				return
			}
			if answer == checksum(data) {
				atomic.AddInt64(&ok, 1)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	session.Close()
	fmt.Printf("SUMMARY streams=%d ok=%d\n", streams, ok)
	fmt.Printf("ELAPSED_NS %d\n", elapsed.Nanoseconds())
}
