package usage

import (
	"log/slog"

	"trueportai/services/gateway/internal/journal"
)

// OpenJournal opens the usage journal in dir for events of up to
// messageLimit bytes (segments hold at least one) and moves the events a
// previous process left in it to the spool (one write and one sync per
// segment), whose replay publishes them like any spooled event: through
// the sanitising encoder, to the dead-letter stream if unpublishable, and
// idempotently (the ingester skips request ids it stored). A journal that
// cannot be opened is logged and nil: the gateway serves without it
// (events then do not survive a kill), and trueport_usage_journal_enabled
// is 0. Segments that cannot be moved (a full spool) stay for the next
// start.
func OpenJournal(dir string, maxBytes int64, messageLimit int, spool *Spool, log *slog.Logger) *journal.Journal {
	seg := max(journal.DefaultSegmentBytes, (messageLimit+64+(64<<10)-1)/(64<<10)*(64<<10))
	j, err := journal.Open(journal.Options{Dir: dir, SegmentBytes: seg, MaxBytes: maxBytes, Log: log})
	if err != nil {
		log.Error("usage journal not opened: events queued in memory will not survive a kill of this process", "dir", dir, "err", err)
		return nil
	}
	n, err := j.Recover(spool.AppendLines)
	switch {
	case err != nil:
		log.Error("usage journal: events of a previous process not recovered yet (they stay in the journal)", "dir", dir, "recovered", n, "err", err)
	case n > 0:
		log.Warn("usage journal: events a previous process had not delivered moved to the spool for replay", "dir", dir, "events", n)
	}
	return j
}
