package relay

import "sync"

// Subscribe returns a channel that receives a value whenever envelopes for
// recipient were committed; sends do not block and the channel holds one
// value, so a slow reader sees one wake-up for many commits and should Read
// until it has caught up. cancel unsubscribes (calling it again is a no-op);
// the channel is never closed. Any number of subscribers per recipient.
func (s *Store) Subscribe(recipient string) (notify <-chan struct{}, cancel func()) {
	return s.SubscribeMany([]string{recipient})
}

// SubscribeMany is Subscribe to several mailboxes with one channel: a
// member's stream waits on its own mailbox and its groups' at once.
func (s *Store) SubscribeMany(names []string) (notify <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	s.subMu.Lock()
	for _, name := range names {
		m := s.subs[name]
		if m == nil {
			m = make(map[chan struct{}]struct{})
			s.subs[name] = m
			s.tails[name] = &tail{}
		}
		m[ch] = struct{}{}
	}
	s.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.subMu.Lock()
			defer s.subMu.Unlock()
			for _, name := range names {
				s.unsubscribe(name, ch)
			}
		})
	}
}

// unsubscribe removes ch from name's subscribers (subMu held).
func (s *Store) unsubscribe(name string, ch chan struct{}) {
	if m := s.subs[name]; m != nil {
		delete(m, ch)
		if len(m) == 0 {
			delete(s.subs, name)
			if t := s.tails[name]; t != nil {
				s.dropTail(t)
				delete(s.tails, name)
			}
		}
	}
}
