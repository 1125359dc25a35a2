// Package nodeauth authenticates a client's session to a node once, so the
// node need not check a signature on every envelope.
//
// The client asks for a challenge (a random nonce, single use, valid
// ChallengeTTL), signs Message(nodeID, nonce) with its Ed25519 account key,
// and gets a bearer token valid SessionTTL. Binding the node id stops a
// node from replaying a client's answer to another node.
//
// Entry points: Message (both sides), and Authenticator (the node side),
// whose methods are safe for concurrent use.
package nodeauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Limits.
const (
	NonceSize      = 32
	ChallengeTTL   = time.Minute
	SessionTTL     = 24 * time.Hour
	MaxChallenges  = 100_000
	MaxSessions    = 1_000_000
	tokenSizeBytes = 32
)

var (
	// ErrUnauthenticated: no, unknown or expired token.
	ErrUnauthenticated = errors.New("not authenticated (no or expired session token)")
	// ErrBadChallenge: the nonce was not issued for this handle, was used, or expired.
	ErrBadChallenge = errors.New("unknown or expired challenge")
	// ErrBadSignature: the answer is not signed by the account key.
	ErrBadSignature = errors.New("challenge signature does not verify with the account key")
	// ErrBusy: too many outstanding challenges or sessions.
	ErrBusy = errors.New("too many pending authentications")
)

// Message is what a client signs to answer a challenge.
func Message(nodeID string, nonce []byte) []byte {
	m := []byte("tokenim/auth/v1\x00" + nodeID + "\x00")
	return append(m, nonce...)
}

// Sign answers a challenge with key.
func Sign(key ed25519.PrivateKey, nodeID string, nonce []byte) []byte {
	return ed25519.Sign(key, Message(nodeID, nonce))
}

type entry struct {
	handle  string
	expires time.Time
}

// Authenticator issues challenges and session tokens.
type Authenticator struct {
	nodeID     string
	now        func() time.Time
	mu         sync.Mutex
	challenges map[string]entry
	sessions   map[string]entry
}

// New returns an Authenticator for a node id; now is the clock.
func New(nodeID string, now func() time.Time) *Authenticator {
	return &Authenticator{nodeID: nodeID, now: now, challenges: map[string]entry{}, sessions: map[string]entry{}}
}

// NodeID is the id challenges are bound to.
func (a *Authenticator) NodeID() string { return a.nodeID }

// Challenge issues a nonce for handle.
func (a *Authenticator) Challenge(handle string) ([]byte, error) {
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.challenges) >= MaxChallenges {
		expire(a.challenges, now)
		if len(a.challenges) >= MaxChallenges {
			return nil, ErrBusy
		}
	}
	a.challenges[hex.EncodeToString(nonce)] = entry{handle: handle, expires: now.Add(ChallengeTTL)}
	return nonce, nil
}

// Authenticate checks an answer against accountKey (the key the chain
// records for handle) and returns a session token and its expiry.
func (a *Authenticator) Authenticate(handle string, nonce, sig []byte, accountKey ed25519.PublicKey) (string, time.Time, error) {
	now := a.now()
	k := hex.EncodeToString(nonce)
	a.mu.Lock()
	c, ok := a.challenges[k]
	if ok {
		delete(a.challenges, k) // single use, even when the answer is wrong
	}
	a.mu.Unlock()
	if !ok || c.handle != handle || now.After(c.expires) {
		return "", time.Time{}, ErrBadChallenge
	}
	if len(accountKey) != ed25519.PublicKeySize || !ed25519.Verify(accountKey, Message(a.nodeID, nonce), sig) {
		return "", time.Time{}, ErrBadSignature
	}
	tok := make([]byte, tokenSizeBytes)
	if _, err := rand.Read(tok); err != nil {
		return "", time.Time{}, err
	}
	token := base64.RawURLEncoding.EncodeToString(tok)
	exp := now.Add(SessionTTL)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= MaxSessions {
		expire(a.sessions, now)
		if len(a.sessions) >= MaxSessions {
			return "", time.Time{}, ErrBusy
		}
	}
	a.sessions[token] = entry{handle: handle, expires: exp}
	return token, exp, nil
}

// Handle returns the handle a token was issued to.
func (a *Authenticator) Handle(token string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[token]
	if !ok {
		return "", ErrUnauthenticated
	}
	if a.now().After(s.expires) {
		delete(a.sessions, token)
		return "", fmt.Errorf("%w: session expired", ErrUnauthenticated)
	}
	return s.handle, nil
}

func expire(m map[string]entry, now time.Time) {
	for k, e := range m {
		if now.After(e.expires) {
			delete(m, k)
		}
	}
}
