// Command tilescheck reads a C2SP tlog-tiles log with filippo.io/torchwood's Client: it checks the checkpoint's
// signature, then fetches and authenticates every entry against the tree, and prints the tree and the entries.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	prefix := flag.String("prefix", "", "the log's URL prefix (its checkpoint is at PREFIX/checkpoint)")
	keyFile := flag.String("key", "", "the log's verifier key file")
	token := flag.String("token", "", "bearer token, for a log served with a token")
	flag.Parse()

	key, err := os.ReadFile(*keyFile)
	if err != nil {
		fail("key: %v", err)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(key)))
	if err != nil {
		fail("key: %v", err)
	}
	hc := &http.Client{Transport: bearer{*token}}
	base := strings.TrimSuffix(*prefix, "/") + "/"
	resp, err := hc.Get(base + "checkpoint")
	if err != nil {
		fail("checkpoint: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		fail("checkpoint: status %d %v", resp.StatusCode, err)
	}
	n, err := note.Open(body, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		fail("checkpoint: %v", err)
	}
	fetcher, err := torchwood.NewTileFetcher(base, torchwood.WithHTTPClient(hc))
	if err != nil {
		fail("fetcher: %v", err)
	}
	client, err := torchwood.NewClient(fetcher)
	if err != nil {
		fail("client: %v", err)
	}
	fmt.Printf("%d %s\n", cp.N, base64.StdEncoding.EncodeToString(cp.Hash[:]))
	tree := tlog.Tree{N: cp.N, Hash: cp.Hash}
	next := int64(0)
	// The client may stop before a partial entry bundle: ask again from the next index until the tree's end.
	for next < cp.N {
		before := next
		for i, entry := range client.Entries(context.Background(), tree, next) {
			if i != next {
				fail("entries: got index %d, expected %d", i, next)
			}
			fmt.Printf("%d %s\n", i, base64.StdEncoding.EncodeToString(entry))
			next++
		}
		if err := client.Err(); err != nil {
			fail("entries: %v", err)
		}
		if next == before {
			fail("entries: no progress at index %d of %d", next, cp.N)
		}
	}
}
