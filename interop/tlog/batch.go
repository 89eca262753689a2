// Signed batches (transparency/signing.py), checked and signed with the Go reference libraries:
// each stored event's entry bytes are rebuilt here from its columns and its stored state, the batch note
// is opened with golang.org/x/mod/sumdb/note over the root an audit path leads to, every event's path must
// lead to that signed root, and the RFC 9162 root of all the events in order (github.com/transparency-dev/merkle)
// must be it too.
//
//	tlogcheck genkey NAME          prints a signer key and its verifier key, one a line
//	tlogcheck verify-batch VKEY    reads one batch's stored events as JSON lines on stdin
//	tlogcheck sign-batch SKEY      reads a batch's note text on stdin, prints the signed note
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const (
	entryPrefix = "cluster-ledger/event/v1\n"
	batchOrigin = "cluster-ledger/batch/v1"
	signedMark  = `,"signed":`
)

// subcommands are the batch checks, named by the first argument; anything else is a checkpoint check.
var subcommands = map[string]func(args []string, stdin io.Reader) error{
	"genkey":       genkey,
	"verify-batch": verifyBatch,
	"sign-batch":   signBatch,
}

// storedEvent is one row of the event store: its columns, and its state as stored (base64).
type storedEvent struct {
	AggregateID string `json:"aggregate_id"`
	Version     uint64 `json:"version"`
	Topic       string `json:"topic"`
	StateBase64 string `json:"state_base64"`
}

// block is the signature block a signed event's state ends with.
type block struct {
	By   string   `json:"by"`
	N    uint64   `json:"n"`
	I    uint64   `json:"i"`
	Path []string `json:"path"`
	Sig  string   `json:"sig"`
}

func genkey(args []string, _ io.Reader) error {
	if len(args) != 1 {
		return errors.New("usage: tlogcheck genkey NAME")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, args[0])
	if err != nil {
		return err
	}
	fmt.Println(skey)
	fmt.Println(vkey)
	return nil
}

func signBatch(args []string, stdin io.Reader) error {
	if len(args) != 1 {
		return errors.New("usage: tlogcheck sign-batch SKEY < TEXT")
	}
	signer, err := note.NewSigner(args[0])
	if err != nil {
		return fmt.Errorf("signer key: %w", err)
	}
	text, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(signed)
	return err
}

// splitSigned is the state without its signature block (the body an entry is built from), and the block.
func splitSigned(state []byte) ([]byte, *block, error) {
	at := bytes.LastIndex(state, []byte(signedMark+"{"))
	if at < 0 {
		return nil, nil, errors.New("unsigned: the stored state carries no signature block")
	}
	if !bytes.HasSuffix(state, []byte("}")) {
		return nil, nil, errors.New("the signature block is not the last field of the stored state")
	}
	raw := state[at+len(signedMark) : len(state)-1]
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b block
	if err := dec.Decode(&b); err != nil {
		return nil, nil, fmt.Errorf("the signature block is malformed: %w", err)
	}
	body := append(append([]byte{}, state[:at]...), '}')
	return body, &b, nil
}

// entry is the event's entry bytes: the prefix, u16-length aggregate id, u64 version, u16-length topic, u32-length body.
func entry(e storedEvent, body []byte) []byte {
	var out bytes.Buffer
	out.WriteString(entryPrefix)
	binary.Write(&out, binary.BigEndian, uint16(len(e.AggregateID)))
	out.WriteString(e.AggregateID)
	binary.Write(&out, binary.BigEndian, e.Version)
	binary.Write(&out, binary.BigEndian, uint16(len(e.Topic)))
	out.WriteString(e.Topic)
	binary.Write(&out, binary.BigEndian, uint32(len(body)))
	out.Write(body)
	return out.Bytes()
}

func verifyBatch(args []string, stdin io.Reader) error {
	if len(args) != 1 {
		return errors.New("usage: tlogcheck verify-batch VKEY < EVENTS.jsonl")
	}
	verifier, err := note.NewVerifier(args[0])
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	var leaves [][]byte
	var blocks []*block
	lines := bufio.NewScanner(stdin)
	lines.Buffer(make([]byte, 1<<20), 64<<20)
	for lines.Scan() {
		if len(bytes.TrimSpace(lines.Bytes())) == 0 {
			continue
		}
		var e storedEvent
		if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
			return fmt.Errorf("event %d: %w", len(leaves)+1, err)
		}
		state, err := base64.StdEncoding.DecodeString(e.StateBase64)
		if err != nil {
			return fmt.Errorf("event %d: state_base64: %w", len(leaves)+1, err)
		}
		body, b, err := splitSigned(state)
		if err != nil {
			return fmt.Errorf("event %d: %w", len(leaves)+1, err)
		}
		leaves = append(leaves, rfc6962.DefaultHasher.HashLeaf(entry(e, body)))
		blocks = append(blocks, b)
	}
	if err := lines.Err(); err != nil {
		return err
	}
	if len(leaves) == 0 {
		return errors.New("no events on stdin")
	}
	n := uint64(len(leaves))
	first := blocks[0]
	// The root each event's audit path leads to; the signed one is whichever the batch note verifies for.
	claimed := make([][]byte, len(leaves))
	for k, b := range blocks {
		if b.N != n || b.By != first.By || b.Sig != first.Sig {
			return fmt.Errorf("event %d: its block (by %q, n %d) is not of the same batch of %d events as event 1", k+1, b.By, b.N, n)
		}
		path, err := decodeAll(b.Path)
		if err != nil {
			return fmt.Errorf("event %d: audit path: %w", k+1, err)
		}
		if claimed[k], err = proof.RootFromInclusionProof(rfc6962.DefaultHasher, b.I, b.N, leaves[k], path); err != nil {
			return fmt.Errorf("event %d (index %d of %d): audit path: %w", k+1, b.I, b.N, err)
		}
	}
	var signed []byte
	var refused error
	for _, root := range claimed {
		text := fmt.Sprintf("%s\n%d\n%s\n", batchOrigin, n, base64.StdEncoding.EncodeToString(root))
		msg := text + "\n\u2014 " + first.By + " " + first.Sig + "\n"
		if _, refused = note.Open([]byte(msg), note.VerifierList(verifier)); refused == nil {
			signed = root
			break
		}
	}
	if signed == nil {
		return fmt.Errorf("batch note: note.Open: %w (over the root of every event's audit path)", refused)
	}
	for k, root := range claimed {
		if !bytes.Equal(root, signed) {
			return fmt.Errorf("event %d (index %d of %d): its audit path leads to another root than the signed one", k+1, blocks[k].I, n)
		}
	}
	// Every path holds; the whole batch, in order, must also be the tree the signature covers.
	tree := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, leaf := range leaves {
		if err := tree.Append(leaf, nil); err != nil {
			return err
		}
	}
	root, err := tree.GetRootHash(nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(root, signed) {
		return errors.New("the events given, in this order, are not the batch the signature covers")
	}
	fmt.Printf("ok: %d events signed by %s, root %s\n", n, verifier.Name(), strings.TrimSpace(base64.StdEncoding.EncodeToString(root)))
	return nil
}
