package server

import (
	"context"
	"fmt"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/broker"
)

func topicFromProto(t *brokerpb.TopicConfig) (broker.TopicConfig, error) {
	if t == nil {
		return broker.TopicConfig{}, fmt.Errorf("%w: topic is missing", broker.ErrInvalidArgument)
	}
	return broker.TopicConfig{
		Name: t.GetName(), Queues: t.GetQueues(), Perm: broker.Perm(t.GetPermission()),
		MaxMessageBytes: t.GetMaxMessageBytes(),
	}, nil
}

func topicToProto(t broker.TopicConfig) *brokerpb.TopicConfig {
	return &brokerpb.TopicConfig{
		Name: t.Name, Queues: t.Queues, Permission: brokerpb.Permission(t.Perm),
		MaxMessageBytes: t.MaxMessageBytes,
	}
}

// CreateTopic creates a topic's queues on this broker.
func (s *Server) CreateTopic(_ context.Context, req *brokerpb.CreateTopicRequest) (*brokerpb.TopicResponse, error) {
	t, err := topicFromProto(req.GetTopic())
	if err == nil {
		t, err = s.b.CreateTopic(t)
	}
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.TopicResponse{Topic: topicToProto(t)}, nil
}

// UpdateTopic changes a topic's queues, permission or limit.
func (s *Server) UpdateTopic(_ context.Context, req *brokerpb.UpdateTopicRequest) (*brokerpb.TopicResponse, error) {
	t, err := topicFromProto(req.GetTopic())
	if err == nil {
		t, err = s.b.UpdateTopic(t)
	}
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.TopicResponse{Topic: topicToProto(t)}, nil
}

// DeleteTopic removes a topic from this broker.
func (s *Server) DeleteTopic(_ context.Context, req *brokerpb.DeleteTopicRequest) (*brokerpb.DeleteTopicResponse, error) {
	return &brokerpb.DeleteTopicResponse{}, errTable.Status(s.b.DeleteTopic(req.GetName()))
}

// ListTopics lists this broker's topics.
func (s *Server) ListTopics(context.Context, *brokerpb.ListTopicsRequest) (*brokerpb.ListTopicsResponse, error) {
	out := &brokerpb.ListTopicsResponse{}
	for _, t := range s.b.Topics() {
		out.Topics = append(out.Topics, topicToProto(t))
	}
	return out, nil
}

// SetPermission sets the broker's or a topic's permission.
func (s *Server) SetPermission(_ context.Context, req *brokerpb.SetPermissionRequest) (*brokerpb.SetPermissionResponse, error) {
	err := s.b.SetPermission(req.GetTopic(), broker.Perm(req.GetPermission()))
	return &brokerpb.SetPermissionResponse{}, errTable.Status(err)
}

// GetBrokerInfo describes the broker.
func (s *Server) GetBrokerInfo(context.Context, *brokerpb.GetBrokerInfoRequest) (*brokerpb.BrokerInfo, error) {
	i := s.b.Info()
	return &brokerpb.BrokerInfo{
		Name: i.Name, Dc: i.DC, Permission: brokerpb.Permission(i.Perm), CommitlogMinPos: i.MinPos,
		CommitlogMaxPos: i.MaxPos, FlushMode: i.FlushMode, MaxMessageBytes: i.MaxMessageBytes,
	}, nil
}
