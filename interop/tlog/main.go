// Command tlogcheck checks Cluster Ledger checkpoints and proofs with the Go reference libraries:
// golang.org/x/mod/sumdb/note for signed notes and github.com/transparency-dev/merkle for RFC 9162 proofs.
//
//	tlogcheck -key KEY.pub -checkpoint CP [-old-checkpoint OLD] [-leaf-only] PROOF.json...
//	tlogcheck genkey | verify-batch | sign-batch ...   (signed batches: see batch.go)
//
// It also recomputes every inclusion proof's leaf hash from its leaf bytes. Exit 0 only if every proof verifies.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type checkpoint struct {
	origin string
	size   uint64
	root   []byte
}

type proofJSON struct {
	Kind      string   `json:"kind"`
	Position  int64    `json:"position"`
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize  uint64   `json:"tree_size"`
	Leaf      string   `json:"leaf"`
	LeafHash  string   `json:"leaf_hash"`
	OldSize   uint64   `json:"old_size"`
	NewSize   uint64   `json:"new_size"`
	Path      []string `json:"path"`
}

func main() {
	if len(os.Args) > 1 {
		if command, ok := subcommands[os.Args[1]]; ok {
			if err := command(os.Args[2:], os.Stdin); err != nil {
				fmt.Println("FAIL:", err)
				os.Exit(1)
			}
			return
		}
	}
	key := flag.String("key", "", "verifier key file (name+hash+base64 key)")
	cpFile := flag.String("checkpoint", "", "signed checkpoint the proofs lead to")
	oldFile := flag.String("old-checkpoint", "", "older signed checkpoint, for consistency proofs")
	flag.Parse()
	if *key == "" || *cpFile == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck -key KEY.pub -checkpoint CP [-old-checkpoint OLD] PROOF.json...")
		os.Exit(2)
	}
	if err := run(*key, *cpFile, *oldFile, flag.Args()); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func run(keyFile, cpFile, oldFile string, proofs []string) error {
	vkey, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	cp, err := openCheckpoint(cpFile, verifier)
	if err != nil {
		return err
	}
	var old *checkpoint
	if oldFile != "" {
		if old, err = openCheckpoint(oldFile, verifier); err != nil {
			return err
		}
	}
	for _, file := range proofs {
		if err := check(file, cp, old); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		fmt.Printf("ok: %s\n", file)
	}
	return nil
}

func openCheckpoint(file string, verifier note.Verifier) (*checkpoint, error) {
	msg, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("%s: note.Open: %w", file, err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return nil, fmt.Errorf("%s: not a checkpoint", file)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: tree size: %w", file, err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		return nil, fmt.Errorf("%s: root hash: %w", file, err)
	}
	return &checkpoint{origin: lines[0], size: size, root: root}, nil
}

func decodeAll(in []string) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func check(file string, cp, old *checkpoint) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var p proofJSON
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	path, err := decodeAll(p.Path)
	if err != nil {
		return err
	}
	switch p.Kind {
	case "inclusion":
		leaf, err := base64.StdEncoding.DecodeString(p.Leaf)
		if err != nil {
			return err
		}
		leafHash := rfc6962.DefaultHasher.HashLeaf(leaf)
		stated, _ := base64.StdEncoding.DecodeString(p.LeafHash)
		if !bytes.Equal(leafHash, stated) {
			return errors.New("leaf_hash is not the RFC 6962 hash of the leaf bytes")
		}
		if sha := sha256.Sum256(append([]byte{0}, leaf...)); !bytes.Equal(sha[:], leafHash) {
			return errors.New("leaf hash is not SHA-256(0x00 || leaf)")
		}
		if p.TreeSize != cp.size {
			return fmt.Errorf("proof for tree size %d, checkpoint has %d", p.TreeSize, cp.size)
		}
		return proof.VerifyInclusion(rfc6962.DefaultHasher, p.LeafIndex, p.TreeSize, leafHash, path, cp.root)
	case "consistency":
		if old == nil {
			return errors.New("a consistency proof needs -old-checkpoint")
		}
		if p.OldSize != old.size || p.NewSize != cp.size {
			return fmt.Errorf("proof from %d to %d, checkpoints have %d and %d", p.OldSize, p.NewSize, old.size, cp.size)
		}
		return proof.VerifyConsistency(rfc6962.DefaultHasher, p.OldSize, p.NewSize, path, old.root, cp.root)
	}
	return fmt.Errorf("unknown proof kind %q", p.Kind)
}
