package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/blob"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/placement"
	"github.com/tokenim/tokenim/internal/relay"
)

// MaxHasChunks caps one HasChunks request.
const MaxHasChunks = 4096

type blobService struct{ n *Node }

// chunkReplicas is the replica set of a chunk (this node alone before the
// registry has nodes).
func (n *Node) chunkReplicas(hash []byte) []string {
	reg := n.registry()
	if len(reg.ids) == 0 {
		return []string{n.nodeID}
	}
	return placement.Replicas(placement.ChunkKey(hash), reg.ids, reg.r)
}

func (s *blobService) PutChunk(ctx context.Context, req *connect.Request[tokenimv1.PutChunkRequest]) (*connect.Response[tokenimv1.PutChunkResponse], error) {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return nil, err
	}
	h, data := req.Msg.Hash, req.Msg.Data
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], h) || len(data) > blob.MaxChunk {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("chunk of %d bytes does not match its hash or is over %d bytes", len(data), blob.MaxChunk))
	}
	exp, err := s.n.chunkExpiry(me, req.Msg.Conversation, time.Now())
	if err != nil {
		return nil, err
	}
	set := s.n.chunkReplicas(h)
	results := make(chan error, len(set))
	bg := context.WithoutCancel(ctx)
	for _, id := range set {
		go func() {
			cctx, cancel := context.WithTimeout(bg, peerCallTimout)
			defer cancel()
			results <- s.n.putChunkOn(cctx, id, h, data, exp)
		}()
	}
	ok, need := 0, placement.Quorum(len(set))
	var errs []error
	for range set {
		err := <-results
		if err == nil {
			if ok++; ok >= need {
				return connect.NewResponse(&tokenimv1.PutChunkResponse{}), nil
			}
			continue
		}
		errs = append(errs, err)
	}
	return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("chunk stored on %d of %d replicas, need %d: %w", ok, len(set), need, errors.Join(errs...)))
}

func (n *Node) putChunkOn(ctx context.Context, id string, h, data []byte, expiresMs int64) error {
	if id == n.nodeID {
		return n.blobs.PutExpiring(h, data, expiresMs)
	}
	rec, ok := n.registry().nodes[id]
	if !ok {
		return fmt.Errorf("node %s not registered", short(id))
	}
	_, err := n.peers.get(rec.ApiUrl).ReplicateChunk(ctx, connect.NewRequest(&tokenimv1.PutChunkRequest{Hash: h, Data: data, ExpiresAtMs: expiresMs}))
	return err
}

// chunkExpiry is when a chunk me stores for conversation ("@handle", a
// group name, or empty) expires under its policy's retention (0: kept).
func (n *Node) chunkExpiry(me, conversation string, now time.Time) (int64, error) {
	if conversation == "" {
		return 0, nil
	}
	r, _ := n.app.Committed()
	if peer, ok := strings.CutPrefix(conversation, "@"); ok {
		p, err := ledger.ConversationPolicy(r, me, peer)
		if err != nil {
			return 0, connect.NewError(connect.CodeInternal, err)
		}
		if p == nil {
			return 0, nil
		}
		return expiry(p, ledger.ConversationVars(me, peer, now), now)
	}
	g, err := ledger.GetGroup(r, conversation)
	if errors.Is(err, ledger.ErrUnknownGroup) {
		return 0, connect.NewError(connect.CodeNotFound, err)
	}
	if err != nil {
		return 0, connect.NewError(connect.CodeInternal, err)
	}
	if ledger.Role(g, me) == "" {
		return 0, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%w: not a member of %s", ledger.ErrDenied, conversation))
	}
	p, err := ledger.PolicyOf(r, g)
	if err != nil {
		return 0, connect.NewError(connect.CodeInternal, err)
	}
	return expiry(p, ledger.GroupVars(g, me, now), now)
}

// GetChunk serves a chunk from here or from a replica. A replica that
// serves bytes that do not match the hash is skipped.
func (s *blobService) GetChunk(ctx context.Context, req *connect.Request[tokenimv1.GetChunkRequest]) (*connect.Response[tokenimv1.GetChunkResponse], error) {
	if _, err := s.n.caller(req.Header()); err != nil {
		return nil, err
	}
	h := req.Msg.Hash
	if data, err := s.n.blobs.Get(h); err == nil {
		return connect.NewResponse(&tokenimv1.GetChunkResponse{Data: data}), nil
	} else if errors.Is(err, blob.ErrCorrupt) {
		s.n.log.Warn("local chunk corrupt; using a replica", "hash", fmt.Sprintf("%x", h))
	}
	reg := s.n.registry()
	for _, id := range s.n.chunkReplicas(h) {
		rec, ok := reg.nodes[id]
		if id == s.n.nodeID || !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, peerCallTimout)
		res, err := s.n.peers.get(rec.ApiUrl).FetchChunk(cctx, connect.NewRequest(&tokenimv1.GetChunkRequest{Hash: h}))
		cancel()
		if err != nil {
			continue
		}
		if sum := sha256.Sum256(res.Msg.Data); bytes.Equal(sum[:], h) {
			return connect.NewResponse(&tokenimv1.GetChunkResponse{Data: res.Msg.Data}), nil
		}
		s.n.log.Warn("replica served a wrong chunk", "node", id)
	}
	return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("chunk %x: no replica has it intact", h))
}

// HasChunks answers for this node's store.
func (s *blobService) HasChunks(_ context.Context, req *connect.Request[tokenimv1.HasChunksRequest]) (*connect.Response[tokenimv1.HasChunksResponse], error) {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return nil, err
	}
	want, err := s.n.chunkExpiry(me, req.Msg.Conversation, time.Now())
	if err != nil {
		return nil, err
	}
	if len(req.Msg.Hashes) > MaxHasChunks {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%d hashes (cap %d)", len(req.Msg.Hashes), MaxHasChunks))
	}
	resp := &tokenimv1.HasChunksResponse{}
	for _, h := range req.Msg.Hashes {
		ok, err := s.n.blobs.Has(h)
		if err != nil {
			return nil, connect.NewError(connect.CodeInternal, err)
		}
		if ok {
			have, err := s.n.blobs.Expiry(h)
			if err != nil {
				return nil, connect.NewError(connect.CodeInternal, err)
			}
			ok = have == 0 || (want != 0 && have >= want) // kept long enough
		}
		resp.Present = append(resp.Present, ok)
	}
	return connect.NewResponse(resp), nil
}

func (s *peerService) ReplicateChunk(_ context.Context, req *connect.Request[tokenimv1.PutChunkRequest]) (*connect.Response[tokenimv1.PutChunkResponse], error) {
	if _, err := s.n.peerCaller(tokenimv1connect.PeerServiceReplicateChunkProcedure, req.Header(), req.Msg); err != nil {
		return nil, err
	}
	if err := s.n.blobs.PutExpiring(req.Msg.Hash, req.Msg.Data, req.Msg.ExpiresAtMs); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return connect.NewResponse(&tokenimv1.PutChunkResponse{}), nil
}

func (s *peerService) FetchChunk(_ context.Context, req *connect.Request[tokenimv1.GetChunkRequest]) (*connect.Response[tokenimv1.GetChunkResponse], error) {
	if _, err := s.n.peerCaller(tokenimv1connect.PeerServiceFetchChunkProcedure, req.Header(), req.Msg); err != nil {
		return nil, err
	}
	data, err := s.n.blobs.Get(req.Msg.Hash)
	if err != nil {
		return nil, connect.NewError(connect.CodeNotFound, err)
	}
	return connect.NewResponse(&tokenimv1.GetChunkResponse{Data: data}), nil
}

// Blobs is the node's chunk store (tests simulate a faulty disk with it).
func (n *Node) Blobs() *blob.Store { return n.blobs }

// Relay is the node's envelope store (tests use it to play a node that
// drops or alters what it holds).
func (n *Node) Relay() *relay.Store { return n.relay }
