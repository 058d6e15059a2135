package logging

import (
	"context"
	"log/slog"
	"slices"
)

// handler wraps a text or JSON handler: it keeps the attributes added with
// WithAttrs itself, one value per key (a later one replaces an earlier one
// in place), merges each line's attributes into them the same way, and adds
// trace_id from the context. Lines are rare enough (no info line per
// message) that merging per line costs nothing that matters; disabled
// levels never reach Handle.
type handler struct {
	inner slog.Handler
	attrs []slog.Attr // top-level attributes, unique keys
}

func newHandler(inner slog.Handler) *handler { return &handler{inner: inner} }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	attrs := slices.Clone(h.attrs)
	for _, a := range as {
		attrs = setAttr(attrs, a)
	}
	return &handler{inner: h.inner, attrs: attrs}
}

// WithGroup writes the attributes so far to the inner handler, at the top
// level, before opening the group; later ones go into it.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	inner := h.inner
	if len(h.attrs) > 0 {
		inner = inner.WithAttrs(h.attrs)
	}
	return &handler{inner: inner.WithGroup(name)}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	trace := TraceID(ctx)
	if len(h.attrs) == 0 && r.NumAttrs() == 0 && trace == "" {
		return h.inner.Handle(ctx, r)
	}
	attrs := make([]slog.Attr, len(h.attrs), len(h.attrs)+r.NumAttrs()+1)
	copy(attrs, h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = setAttr(attrs, a)
		return true
	})
	if trace != "" && !slices.ContainsFunc(attrs, func(a slog.Attr) bool { return a.Key == KeyTraceID }) {
		// After the logger's own fields, before the line's.
		attrs = slices.Insert(attrs, len(h.attrs), slog.String(KeyTraceID, trace))
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(attrs...)
	return h.inner.Handle(ctx, out)
}

// setAttr replaces the attribute of a's key in attrs, or appends a. An
// attribute without a key (an inlined group) is always appended.
func setAttr(attrs []slog.Attr, a slog.Attr) []slog.Attr {
	if a.Key != "" {
		for i := range attrs {
			if attrs[i].Key == a.Key {
				attrs[i] = a
				return attrs
			}
		}
	}
	return append(attrs, a)
}
