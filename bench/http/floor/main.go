// Command floor is the HTTP floor of `make bench-http`: the least a Go
// net/http server can do per request on this machine. It reads and discards
// the request body and answers 200 with a constant JSON body the size of the
// server's answer to a GET. It listens on 127.0.0.1 (port 0 by default:
// a free one) and prints "listening on ADDR" when ready.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

var body = []byte(`{"key":"k00000","value":"v000000000000000"}` + "\n")

func main() {
	port := flag.Int("port", 0, "TCP port (0: a free one)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", ln.Addr())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(body)
	})
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
