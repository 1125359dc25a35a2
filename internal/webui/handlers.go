package webui

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
)

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("15:04")
	},
	"date": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"until": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Until(t).Round(time.Second)
		if d <= 0 {
			return "expired"
		}
		return "deletes in " + d.String()
	},
	"unix": func(t time.Time) int64 { return t.UnixMilli() },
	"wrap": func(csrf string, v *convView) any {
		return struct {
			CSRF string
			*convView
		}{csrf, v}
	},
	"span": client.Span,
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
}

// conv is a conversation in the sidebar: "@handle" or a group name.
type conv struct {
	Key    string // "@bob" or "team"
	Title  string
	Group  bool
	Unread int
	Last   string
}

type page struct {
	CSRF    string
	Handle  string
	Home    string
	Exists  bool
	Error   string
	Convs   []conv
	Current *convView
}

type convView struct {
	Key      string
	Title    string
	Group    bool
	Messages []msgView
	Contact  *client.ContactStatus
	GroupRec *tokenimv1.GroupRecord
	Gaps     []client.Gap
	Error    string
	// What the conversation's policy does with its messages, and (1:1)
	// the choices to change it.
	Disappearing   *client.Disappearing
	DisappearOpts  []disappearOpt
	DisappearError string
}

// disappearOpt is one choice of the 1:1 disappearing-messages timer.
type disappearOpt struct {
	Seconds  int64
	Label    string
	Selected bool
}

// disappearChoices are the timers offered for a 1:1 conversation.
var disappearChoices = []time.Duration{0, 5 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 28 * 24 * time.Hour}

// setDisappearing fills v's timer: the conversation's policy now and, for
// a 1:1 conversation, the choices (the one in force selected; a timer set
// otherwise, e.g. with the CLI, is offered as it is).
func (v *convView) setDisappearing(ctx context.Context, c *client.Client) {
	var d client.Disappearing
	var err error
	if h, ok := strings.CutPrefix(v.Key, "@"); ok {
		d, err = c.DirectDisappearing(ctx, h)
	} else if v.GroupRec != nil {
		d, err = c.GroupDisappearing(ctx, v.GroupRec)
	} else {
		return
	}
	if err != nil {
		v.DisappearError = errorText(err)
		return
	}
	v.Disappearing = &d
	if v.Group {
		return
	}
	found := false
	for _, c := range disappearChoices {
		o := disappearOpt{Seconds: int64(c / time.Second), Label: "off", Selected: c == d.After}
		if c > 0 {
			o.Label = client.Span(c)
		}
		found = found || o.Selected
		v.DisappearOpts = append(v.DisappearOpts, o)
	}
	if !found {
		v.DisappearOpts = append(v.DisappearOpts, disappearOpt{Seconds: int64(d.After / time.Second), Label: client.Span(d.After), Selected: true})
	}
}

type msgView struct {
	client.Message
	Mine bool
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("render", "template", name, "err", err)
	}
}

// errorText is what the page shows for an error: specific, with the fix.
func errorText(err error) string {
	switch {
	case errors.Is(err, client.ErrQueued):
		return "Not on the network yet: your message is kept, encrypted on this device (queued), and goes out by itself as soon as the network takes it."
	case errors.Is(err, client.ErrRegistrationPending):
		return "Your registration was sent but is not on the chain yet (the chain makes no blocks now). Your keys are kept: unlock this account later to finish it."
	case errors.Is(err, client.ErrNotCommitted):
		return "The chain makes no blocks now (too many validators offline?): your change may still take effect when they are back. Check before trying again."
	case errors.Is(err, client.ErrNotStored):
		return "Too few of the recipient's storage nodes are up to store it: try again later."
	case errors.Is(err, client.ErrNodeUnreachable):
		return "The node is unreachable: is it running? Start one with `tokenim up`. Your message was not sent."
	case errors.Is(err, client.ErrWrongPassphrase):
		return "Wrong passphrase."
	case errors.Is(err, client.ErrLocked):
		return "Another tokenim process is using this account (the keystore is locked). Stop it first."
	case errors.Is(err, client.ErrDenied):
		return "Denied by the conversation's policy — " + err.Error()
	case errors.Is(err, client.ErrNotMember):
		return "You are not a member of this group."
	case errors.Is(err, ledger.ErrUnknownAccount):
		return "Unknown handle: " + err.Error()
	case errors.Is(err, ledger.ErrHandleTaken):
		return "That handle is taken; pick another."
	case errors.Is(err, ledger.ErrInvalidHandle):
		return "Handles are 3-32 characters: a-z, 0-9 and _."
	case errors.Is(err, client.ErrFileTooLarge), errors.Is(err, errUploadTooLarge):
		return fmt.Sprintf("File too large: the cap here is %d MiB.", MaxUpload>>20)
	case errors.Is(err, client.ErrTooLarge):
		return "Message too long."
	case errors.Is(err, client.ErrIdentityMismatch):
		return "SECURITY WARNING: " + err.Error() + ". Compare fingerprints with them before accepting the new key."
	}
	return err.Error()
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	c := s.account()
	if c == nil {
		s.render(w, "unlock.html", page{CSRF: s.csrf, Home: s.opts.Home, Exists: client.Exists(s.opts.Home)})
		return
	}
	p := s.page(r.Context(), c)
	if key := r.URL.Query().Get("c"); key != "" {
		p.Current = s.view(r.Context(), c, key)
	}
	s.render(w, "app.html", p)
}

func (s *Server) page(ctx context.Context, c *client.Client) page {
	return page{CSRF: s.csrf, Handle: c.Handle(), Home: s.opts.Home, Convs: s.convs(ctx, c)}
}

func (s *Server) postUnlock(w http.ResponseWriter, r *http.Request) {
	if s.account() != nil {
		w.Header().Set("HX-Redirect", "/")
		return
	}
	pass := []byte(r.FormValue("passphrase"))
	defer clear(pass)
	cfg := client.Config{Home: s.opts.Home, NodeURL: s.opts.NodeURL, Passphrase: pass, KeystoreWorkFactor: s.opts.KeystoreWorkFactor}
	var c *client.Client
	var err error
	if client.Exists(s.opts.Home) {
		c, err = client.Open(r.Context(), cfg)
	} else {
		if len(pass) < 8 {
			err = errors.New("choose a passphrase of at least 8 characters")
		} else {
			c, err = client.Create(r.Context(), cfg, strings.TrimPrefix(strings.TrimSpace(r.FormValue("handle")), "@"))
		}
	}
	if err != nil {
		if c != nil {
			c.Close()
		}
		s.render(w, "error", errorText(err))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.c, s.cancel = c, cancel
	s.mu.Unlock()
	go s.listen(ctx, c)
	w.Header().Set("HX-Redirect", "/")
}

// listen follows the client's delivery stream and tells the pages.
func (s *Server) listen(ctx context.Context, c *client.Client) {
	c.OnOutboxSent(func(m client.Message) { s.hub.publish(convKey(&m, c.Handle())) }) // queued → stored
	err := c.Listen(ctx, func(m client.Message) {
		if m.State == client.StateControl { // e.g. a receipt: the states of the conversation changed
			s.hub.publish(convKey(&m, c.Handle()))
			return
		}
		key := convKey(&m, c.Handle())
		s.mu.Lock()
		if key != s.current {
			s.unread[key]++
		}
		s.mu.Unlock()
		s.hub.publish(key)
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("delivery stream ended", "err", err)
	}
}

func convKey(m *client.Message, me string) string {
	switch {
	case m.Group != "":
		return m.Group
	case m.Outgoing || m.From == me:
		return "@" + m.To
	}
	return "@" + m.From
}

func (s *Server) convs(ctx context.Context, c *client.Client) []conv {
	hist, _ := c.History(nil)
	byKey := map[string]*conv{}
	var order []string
	for _, m := range hist {
		k := convKey(&m, c.Handle())
		cv := byKey[k]
		if cv == nil {
			cv = &conv{Key: k, Title: k, Group: m.Group != ""}
			byKey[k] = cv
		}
		order = slices.DeleteFunc(order, func(x string) bool { return x == k })
		order = append(order, k)
		cv.Last = m.Text
	}
	if groups, err := c.Groups(ctx); err == nil {
		for _, g := range groups {
			if byKey[g] == nil {
				byKey[g] = &conv{Key: g, Title: g, Group: true}
				order = append([]string{g}, order...)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]conv, 0, len(order))
	for i := len(order) - 1; i >= 0; i-- {
		cv := byKey[order[i]]
		cv.Unread = s.unread[cv.Key]
		out = append(out, *cv)
	}
	return out
}

func (s *Server) view(ctx context.Context, c *client.Client, key string) *convView {
	v := &convView{Key: key, Title: key}
	if h, ok := strings.CutPrefix(key, "@"); ok {
		st, err := c.CheckContact(ctx, h)
		if err != nil {
			v.Error = errorText(err)
		}
		v.Contact = st
	} else {
		v.Group = true
		g, err := c.Group(ctx, key)
		if err != nil {
			v.Error = errorText(err)
		}
		v.GroupRec = g
	}
	v.setDisappearing(ctx, c)
	v.Messages = s.messageViews(c, key)
	if gaps, err := c.Gaps(); err == nil {
		for _, g := range gaps {
			if (g.Group != "" && g.Group == key) || (g.Group == "" && "@"+g.From == key) {
				v.Gaps = append(v.Gaps, g)
			}
		}
	}
	s.mu.Lock()
	s.current = key
	delete(s.unread, key)
	s.mu.Unlock()
	return v
}

func (s *Server) messageViews(c *client.Client, key string) []msgView {
	hist, _ := c.History(func(m *client.Message) bool { return convKey(m, c.Handle()) == key })
	out := make([]msgView, 0, len(hist))
	var pending []string
	for _, m := range hist {
		out = append(out, msgView{Message: m, Mine: m.Outgoing})
		if m.Anchor == nil && m.Evidence != nil && len(m.Evidence.Commitment) > 0 {
			pending = append(pending, m.ID)
		}
	}
	s.proveLater(c, key, pending)
	return out
}

// proveLater checks, in the background, the proofs of messages shown
// without one yet (newest first, a few at a time), and refreshes the
// conversation when one is anchored: the ⛓ mark appears by itself.
func (s *Server) proveLater(c *client.Client, key string, ids []string) {
	if len(ids) == 0 {
		return
	}
	ids = ids[max(0, len(ids)-8):]
	s.mu.Lock()
	if s.proving == nil {
		s.proving = map[string]bool{}
	}
	var todo []string
	for _, id := range ids {
		if !s.proving[id] {
			s.proving[id] = true
			todo = append(todo, id)
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		anchored := false
		for _, id := range todo {
			for ctx.Err() == nil {
				_, _, err := c.Verify(ctx, id)
				if err == nil {
					anchored = true
					break
				}
				if !errors.Is(err, client.ErrNotAnchored) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		s.mu.Lock()
		for _, id := range todo {
			delete(s.proving, id)
		}
		s.mu.Unlock()
		if anchored {
			s.hub.publish(key)
		}
	}()
}

func (s *Server) sidebar(w http.ResponseWriter, r *http.Request, c *client.Client) {
	s.render(w, "convlist", s.page(r.Context(), c))
}

func (s *Server) conversation(w http.ResponseWriter, r *http.Request, c *client.Client) {
	s.render(w, "conversation", struct {
		CSRF string
		*convView
	}{s.csrf, s.view(r.Context(), c, r.PathValue("conv"))})
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request, c *client.Client) {
	key := r.PathValue("conv")
	s.mu.Lock()
	if key == s.current {
		delete(s.unread, key)
	}
	s.mu.Unlock()
	s.render(w, "messages", s.messageViews(c, key))
}

func (s *Server) send(w http.ResponseWriter, r *http.Request, c *client.Client) {
	key, text := r.PathValue("conv"), strings.TrimRight(r.FormValue("text"), "\n")
	if strings.TrimSpace(text) == "" {
		s.render(w, "error", "Type a message first.")
		return
	}
	var err error
	if h, ok := strings.CutPrefix(key, "@"); ok {
		_, err = c.Send(r.Context(), h, text)
	} else {
		_, err = c.SendGroup(r.Context(), key, text)
	}
	if err != nil && !errors.Is(err, client.ErrQueued) { // a queued message shows, marked queued
		w.Header().Set("HX-Retarget", "#composer-error")
		s.render(w, "error", errorText(err))
		return
	}
	s.render(w, "messages", s.messageViews(c, key))
}

// disappearing sets the 1:1 conversation's timer (seconds; 0: off) and
// shows it as the chain now has it.
func (s *Server) disappearing(w http.ResponseWriter, r *http.Request, c *client.Client) {
	key := r.PathValue("conv")
	h, ok := strings.CutPrefix(key, "@")
	if !ok {
		s.render(w, "error", "A group's messages disappear as its policy says: its owners choose the policy (members & roles).")
		return
	}
	secs, err := strconv.ParseInt(r.FormValue("after"), 10, 64)
	if err != nil || secs < 0 || secs > int64(100*365*24*time.Hour/time.Second) {
		s.render(w, "error", "Choose a time from the list.")
		return
	}
	v := &convView{Key: key}
	if err := c.SetDisappearing(r.Context(), h, time.Duration(secs)*time.Second); err != nil {
		v.DisappearError = errorText(err)
	}
	msg := v.DisappearError
	v.setDisappearing(r.Context(), c)
	if msg != "" {
		v.DisappearError = msg
	}
	s.render(w, "disappearing", v)
	// The notice both of you now have in the conversation (out of band).
	fmt.Fprint(w, `<div id="messages" class="messages" hx-swap-oob="innerHTML">`)
	s.render(w, "messages", s.messageViews(c, key))
	fmt.Fprint(w, `</div>`)
}

var errUploadTooLarge = errors.New("upload too large")

func (s *Server) upload(w http.ResponseWriter, r *http.Request, c *client.Client) {
	key := r.PathValue("conv")
	r.Body = http.MaxBytesReader(w, r.Body, MaxUpload+1<<20)
	f, hdr, err := r.FormFile("file")
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errUploadTooLarge
		}
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		s.render(w, "error", errorText(err))
		return
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "tokenim-ui-")
	if err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, safeName(hdr.Filename))
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err == nil {
		_, err = io.Copy(out, f)
		err = errors.Join(err, out.Close())
	}
	if err == nil {
		if h, ok := strings.CutPrefix(key, "@"); ok {
			_, err = c.SendFile(r.Context(), h, path, nil)
		} else {
			_, err = c.SendGroupFile(r.Context(), key, path, nil)
		}
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		s.render(w, "error", errorText(err))
		return
	}
	s.render(w, "messages", s.messageViews(c, key))
}

func safeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == "" || strings.HasPrefix(name, ".") {
		return "file"
	}
	return name
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, c *client.Client) {
	dir, err := os.MkdirTemp("", "tokenim-ui-")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.RemoveAll(dir)
	path, err := c.FetchFile(r.Context(), r.PathValue("id"), dir, nil)
	if err != nil {
		http.Error(w, errorText(err), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filepath.Base(path)))
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeFile(w, r, path)
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request, c *client.Client) {
	m, a, err := c.Verify(r.Context(), r.PathValue("id"))
	data := struct {
		Msg        *client.Message
		Anchor     *client.Anchor
		Membership *client.Membership
		Error      string
	}{Msg: m, Anchor: a}
	if err == nil && m.Group != "" {
		data.Membership, err = c.MembershipAt(r.Context(), m, a)
	}
	if err != nil {
		data.Error = errorText(err)
	}
	s.render(w, "proof", data)
}

func (s *Server) contact(w http.ResponseWriter, r *http.Request, c *client.Client) {
	st, err := c.CheckContact(r.Context(), r.PathValue("handle"))
	data := struct {
		CSRF    string
		Contact *client.ContactStatus
		Error   string
	}{CSRF: s.csrf, Contact: st}
	if err != nil {
		data.Error = errorText(err)
	}
	s.render(w, "contact", data)
}

func (s *Server) acceptKey(w http.ResponseWriter, r *http.Request, c *client.Client) {
	if err := c.AcceptKeyChange(r.Context(), r.PathValue("handle")); err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	s.contact(w, r, c)
}

func (s *Server) newChat(w http.ResponseWriter, r *http.Request, c *client.Client) {
	h := strings.TrimPrefix(strings.TrimSpace(r.FormValue("handle")), "@")
	if _, _, err := c.ProveAccount(r.Context(), h); err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	w.Header().Set("HX-Redirect", "/?c=@"+h)
}

// policyFor deploys (or finds) a shipped template for a group; "" keeps
// the default policy.
func policyFor(ctx context.Context, c *client.Client, tmpl, date string) (string, error) {
	if tmpl == "" || tmpl == "default" {
		return "", nil
	}
	src, ok := policy.TemplateSource(tmpl)
	if !ok {
		return "", fmt.Errorf("unknown policy template %q", tmpl)
	}
	if tmpl == "read-only-after" && date != "" {
		t, err := time.Parse("2006-01-02", date)
		if err != nil {
			return "", fmt.Errorf("read-only date: %w", err)
		}
		src = fmt.Sprintf("read_only_after = timestamp(%q)\n", t.UTC().Format(time.RFC3339))
	}
	return c.EnsurePolicy(ctx, tmpl, src)
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, c *client.Client) {
	name := strings.TrimSpace(r.FormValue("name"))
	var members []string
	for _, m := range strings.FieldsFunc(r.FormValue("members"), func(r rune) bool { return r == ',' || r == ' ' }) {
		members = append(members, strings.TrimPrefix(m, "@"))
	}
	pol, err := policyFor(r.Context(), c, r.FormValue("policy"), r.FormValue("date"))
	if err == nil {
		err = c.CreateGroup(r.Context(), name, members, pol)
	}
	if err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	w.Header().Set("HX-Redirect", "/?c="+name)
}

// joinGroup adds this account to a group whose policy lets anyone join.
func (s *Server) joinGroup(w http.ResponseWriter, r *http.Request, c *client.Client) {
	name := strings.TrimSpace(r.FormValue("name"))
	if err := c.GroupJoin(r.Context(), name, ""); err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	w.Header().Set("HX-Redirect", "/?c="+name)
}

func (s *Server) groupPanel(w http.ResponseWriter, r *http.Request, c *client.Client) {
	g, proven, err := c.ProveGroup(r.Context(), r.PathValue("group"), 0) // the list as the chain proves it
	data := struct {
		CSRF   string
		Group  *tokenimv1.GroupRecord
		Proven *client.Proven
		Me     string
		Owner  bool
		Rights *client.Rights
		Error  string
	}{CSRF: s.csrf, Group: g, Proven: proven, Me: c.Handle()}
	if err != nil {
		data.Error = errorText(err)
	} else {
		data.Owner = ledger.Role(g, c.Handle()) == ledger.RoleOwner
		if rights, err := c.GroupRights(r.Context(), g); err == nil {
			data.Rights = &rights
		} else {
			data.Error = errorText(err)
		}
	}
	s.render(w, "group", data)
}

// groupEpochs renders each closed epoch's last member list (who could
// read what was sent in it), each proven at its height.
func (s *Server) groupEpochs(w http.ResponseWriter, r *http.Request, c *client.Client) {
	var data struct {
		Epochs []client.ClosedEpoch
		Error  string
	}
	g, err := c.Group(r.Context(), r.PathValue("group"))
	if err == nil {
		data.Epochs, err = c.ClosedEpochs(r.Context(), g)
	}
	if err != nil {
		data.Error = errorText(err)
	}
	s.render(w, "epochs", data)
}

func (s *Server) groupMember(w http.ResponseWriter, r *http.Request, c *client.Client) {
	group, member := r.PathValue("group"), strings.TrimPrefix(strings.TrimSpace(r.FormValue("member")), "@")
	var err error
	switch r.FormValue("action") {
	case "add":
		err = c.GroupAdd(r.Context(), group, member, r.FormValue("role"))
	case "remove":
		err = c.GroupRemove(r.Context(), group, member)
	case "role":
		err = c.GroupSetRole(r.Context(), group, member, r.FormValue("role"))
	case "leave":
		err = c.GroupLeave(r.Context(), group)
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	if r.FormValue("action") == "leave" {
		w.Header().Set("HX-Redirect", "/") // the group is not yours any more
		return
	}
	s.groupPanel(w, r, c)
}

// groupPolicy replaces a group's policy with a template (owners only).
func (s *Server) groupPolicy(w http.ResponseWriter, r *http.Request, c *client.Client) {
	pol, err := policyFor(r.Context(), c, r.FormValue("policy"), r.FormValue("date"))
	if err == nil {
		err = c.SetGroupPolicy(r.Context(), r.PathValue("group"), pol)
	}
	if err != nil {
		s.render(w, "error", errorText(err))
		return
	}
	s.groupPanel(w, r, c)
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, c *client.Client) {
	q := strings.ToLower(strings.TrimSpace(r.FormValue("q")))
	var out []msgView
	if q != "" {
		hist, _ := c.History(func(m *client.Message) bool { return strings.Contains(strings.ToLower(m.Text), q) })
		for _, m := range hist {
			out = append(out, msgView{Message: m, Mine: m.Outgoing})
		}
	}
	s.render(w, "search", struct {
		Q       string
		Results []msgView
	}{q, out})
}
