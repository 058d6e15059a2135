package proxy

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/internal/rpcerr"
	"github.com/duomq/duomq/proxy/auth"
)

// authenticator checks signed calls against the configured apps.
type authenticator struct {
	cfg  AuthConfig
	now  func() time.Time
	apps map[string]*App // by access key
}

func newAuthenticator(cfg AuthConfig, now func() time.Time) *authenticator {
	a := &authenticator{cfg: cfg, now: now, apps: map[string]*App{}}
	for i := range cfg.Apps {
		a.apps[cfg.Apps[i].AccessKey] = &cfg.Apps[i]
	}
	return a
}

// authenticate returns the app whose key signed the call.
func (a *authenticator) authenticate(ctx context.Context, fullMethod string) (*App, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	key, ts, sig := first(md, auth.MDAccessKey), first(md, auth.MDTimestamp), first(md, auth.MDSignature)
	if key == "" || ts == "" || sig == "" {
		return nil, errorf(ErrMissingCredentials, "authentication required: send metadata %s, %s and %s (the SDK does with an access key and secret)",
			auth.MDAccessKey, auth.MDTimestamp, auth.MDSignature)
	}
	app, ok := a.apps[key]
	if !ok {
		return nil, errorf(ErrUnknownAccessKey, "access key %q is not known to this proxy", key)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, errorf(ErrBadSignature, "%s %q is not a unix time in milliseconds", auth.MDTimestamp, ts)
	}
	if skew := a.now().Sub(time.UnixMilli(ms)).Abs(); skew > a.cfg.MaxSkew {
		return nil, errorf(ErrClockSkew, "request signed %v away from the proxy's clock, more than the allowed %v: check the client's clock", skew.Round(time.Second), a.cfg.MaxSkew)
	}
	if !auth.Verify(app.Secret, key, ts, fullMethod, sig) {
		return nil, errorf(ErrBadSignature, "signature of access key %q does not match: check the secret", key)
	}
	return app, nil
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func allowed(list []string, name string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, name)
}

// permit checks that app may make the call req.
func (app *App) permit(req any) error {
	deny := func(what, name string) error {
		return errorf(ErrPermissionDenied, "app %q (access key %s) may not %s %q", app.Name, app.AccessKey, what, name)
	}
	consume := func(group, topic string) error {
		if !allowed(app.ConsumeGroups, group) {
			return deny("consume as group", group)
		}
		if topic != "" && !allowed(app.ConsumeTopics, topic) {
			return deny("consume topic", topic)
		}
		return nil
	}
	switch r := req.(type) {
	case *proxypb.SendRequest:
		if !allowed(app.Produce, r.GetTopic()) {
			return deny("produce to topic", r.GetTopic())
		}
	case *proxypb.ReceiveRequest:
		return consume(r.GetGroup(), r.GetTopic())
	case *proxypb.AckRequest:
		return consume(r.GetGroup(), r.GetTopic())
	case *proxypb.ChangeInvisibleDurationRequest:
		return consume(r.GetGroup(), r.GetTopic())
	case *proxypb.ListDeadLettersRequest:
		return consume(r.GetGroup(), "")
	case *proxypb.RedriveDeadLettersRequest:
		return consume(r.GetGroup(), "")
	case *proxypb.TraceMessageRequest:
		// A trace shows where a topic's messages went: for apps that
		// produce to or consume the topic; without a topic, for apps
		// allowed every topic.
		t := cmp.Or(r.GetTopic(), "*")
		if !allowed(app.Produce, t) && !allowed(app.ConsumeTopics, t) {
			if r.GetTopic() == "" {
				return errorf(ErrPermissionDenied, "app %q (access key %s) may trace only the topics it produces to or consumes: name the topic", app.Name, app.AccessKey)
			}
			return deny("trace messages of topic", r.GetTopic())
		}
	}
	return nil
}

// authorize authenticates and checks the permission of a call when
// authentication is on; refusals are counted by reason.
func (p *Proxy) authorize(ctx context.Context, req any, fullMethod string) error {
	if !p.cfg.Auth.Enabled {
		return nil
	}
	app, err := p.auth.authenticate(ctx, fullMethod)
	if err == nil {
		err = app.permit(req)
	}
	if err != nil {
		p.metrics.authRefusals.WithLabelValues(rpcerr.Reason(toStatus(err))).Inc()
		p.log.WarnContext(ctx, "call refused", "method", fullMethod, "peer", peerHost(ctx), "err", err)
		return err
	}
	return nil
}
