-- GET /notifications is computed on demand from the event stream
-- (push/notifications.go): no row per recipient per event is stored any
-- more, so the table that listed them goes.
DROP TABLE IF EXISTS push_notifications;
