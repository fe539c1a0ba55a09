package syncapi

import "context"

// unreadCounts fills unread_notifications (and, when the filter asks for
// them, unread_thread_notifications) of the joined rooms in a response.
// The push service derives the counts from the user's read receipts and
// the events after them; it waits until every event up to upto has been
// evaluated, so a sync woken by an event reports counts that include it.
//
// Without unread_thread_notifications in the filter the counts cover every
// thread; with it, unread_notifications covers the main timeline and each
// thread with unread notifications gets its own entry.
func (s *Service) unreadCounts(ctx context.Context, req Request, upto int64, join map[string]*JoinedRoom) error {
	if s.push == nil || len(join) == 0 {
		return nil
	}
	ids := make([]string, 0, len(join))
	for id := range join {
		ids = append(ids, id)
	}
	counts, err := s.push.Counts(ctx, req.UserID, ids, upto)
	if err != nil || counts == nil {
		return err
	}
	threads := req.Filter.Room.Timeline.UnreadThreadNotifications
	for id, jr := range join {
		rc := counts[id]
		if !threads {
			jr.Unread = &UnreadCounts{Notifications: rc.Total.Notifications, Highlights: rc.Total.Highlights}
			continue
		}
		jr.Unread = &UnreadCounts{Notifications: rc.Main.Notifications, Highlights: rc.Main.Highlights}
		if len(rc.Threads) > 0 {
			jr.UnreadThread = make(map[string]UnreadCounts, len(rc.Threads))
			for t, c := range rc.Threads {
				jr.UnreadThread[t] = UnreadCounts{Notifications: c.Notifications, Highlights: c.Highlights}
			}
		}
	}
	return nil
}
