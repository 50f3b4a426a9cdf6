// A fast stand-in for the Codex backend's Responses WebSocket, for the proxy benchmark: every
// `response.create` is answered at once with one fixed turn (rate limits, deltas, completion
// with usage), written in a single syscall. Standard library only; each connection is a goroutine.
//
// Usage: wsupstream <port> <turn file: one JSON event per line>
package main

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var turn []byte

const usageJSON = `{"plan_type":"pro","rate_limit":{"allowed":true,"limit_reached":false,` +
	`"primary_window":{"used_percent":10,"limit_window_seconds":18000,"reset_after_seconds":3600,"reset_at":4102444800},` +
	`"secondary_window":{"used_percent":10,"limit_window_seconds":604800,"reset_after_seconds":86400,"reset_at":4102444800}}}`

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wsupstream <port> <turn file>")
		os.Exit(2)
	}
	events, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Every event becomes one unmasked text frame; the whole turn is one write.
	for _, line := range strings.Split(strings.TrimSpace(string(events)), "\n") {
		turn = append(turn, frame(1, []byte(line))...)
	}
	http.HandleFunc("/backend-api/wham/usage", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, usageJSON)
	})
	http.HandleFunc("/backend-api/codex/responses", upgrade)
	fmt.Println("listening")
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func frame(opcode byte, payload []byte) []byte {
	header := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		header = append(header, byte(n))
	case n <= 0xFFFF:
		header = append(header, 126, byte(n>>8), byte(n))
	default:
		header = append(header, 127)
		header = binary.BigEndian.AppendUint64(header, uint64(n))
	}
	return append(header, payload...)
}

func upgrade(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "WebSocket only", http.StatusBadRequest)
		return
	}
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, buffered, err := hijacker.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	digest := sha1.Sum([]byte(key + acceptGUID))
	fmt.Fprintf(buffered, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"+
		"x-codex-primary-used-percent: 10\r\nx-codex-primary-window-minutes: 300\r\nx-codex-secondary-used-percent: 10\r\n"+
		"x-codex-secondary-window-minutes: 10080\r\n\r\n", base64.StdEncoding.EncodeToString(digest[:]))
	if buffered.Flush() != nil {
		return
	}
	serve(conn, buffered.Reader)
}

// serve answers each text message holding a response.create with the turn, pings with pongs,
// and a close with a close.
func serve(conn net.Conn, reader *bufio.Reader) {
	var message []byte
	for {
		var head [2]byte
		if _, err := io.ReadFull(reader, head[:]); err != nil {
			return
		}
		fin, opcode, masked := head[0]&0x80 != 0, head[0]&0x0F, head[1]&0x80 != 0
		length := uint64(head[1] & 0x7F)
		switch length {
		case 126:
			var extended [2]byte
			if _, err := io.ReadFull(reader, extended[:]); err != nil {
				return
			}
			length = uint64(binary.BigEndian.Uint16(extended[:]))
		case 127:
			var extended [8]byte
			if _, err := io.ReadFull(reader, extended[:]); err != nil {
				return
			}
			length = binary.BigEndian.Uint64(extended[:])
		}
		if length > 64<<20 {
			return
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(reader, mask[:]); err != nil {
				return
			}
		}
		payload := make([]byte, length)
		if _, err := io.ReadFull(reader, payload); err != nil {
			return
		}
		if masked {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		switch opcode {
		case 0x8:
			conn.Write(frame(0x8, payload))
			return
		case 0x9:
			conn.Write(frame(0xA, payload))
			continue
		case 0x1, 0x0:
			message = append(message, payload...)
		default:
			continue
		}
		if !fin {
			continue
		}
		if bytes.Contains(message, []byte(`"response.create"`)) {
			if _, err := conn.Write(turn); err != nil {
				return
			}
		}
		message = message[:0]
	}
}
