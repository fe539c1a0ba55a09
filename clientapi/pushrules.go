package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/push"
)

// getPushRules answers GET /pushrules/.
func (a *API) getPushRules(r *http.Request, d *auth.Device) (any, error) {
	rs, err := a.push.Rules(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"global": rs}, nil
}

// getGlobalPushRules answers GET /pushrules/global/.
func (a *API) getGlobalPushRules(r *http.Request, d *auth.Device) (any, error) {
	return a.push.Rules(r.Context(), d.UserID)
}

// getPushRulesOfKind answers GET /pushrules/global/{kind}/.
func (a *API) getPushRulesOfKind(r *http.Request, d *auth.Device) (any, error) {
	rs, err := a.push.Rules(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return rs.Rules(mux.Vars(r)["kind"])
}

// pushRule looks up the rule named by the path.
func (a *API) pushRule(r *http.Request, d *auth.Device) (push.Rule, error) {
	rs, err := a.push.Rules(r.Context(), d.UserID)
	if err != nil {
		return push.Rule{}, err
	}
	v := mux.Vars(r)
	return rs.Get(v["kind"], v["ruleId"])
}

// getPushRule answers GET /pushrules/global/{kind}/{ruleId}.
func (a *API) getPushRule(r *http.Request, d *auth.Device) (any, error) {
	return a.pushRule(r, d)
}

// getPushRuleEnabled answers GET /pushrules/global/{kind}/{ruleId}/enabled.
func (a *API) getPushRuleEnabled(r *http.Request, d *auth.Device) (any, error) {
	rule, err := a.pushRule(r, d)
	if err != nil {
		return nil, err
	}
	return map[string]bool{"enabled": rule.Enabled}, nil
}

// getPushRuleActions answers GET /pushrules/global/{kind}/{ruleId}/actions.
func (a *API) getPushRuleActions(r *http.Request, d *auth.Device) (any, error) {
	rule, err := a.pushRule(r, d)
	if err != nil {
		return nil, err
	}
	return map[string]any{"actions": rule.Actions}, nil
}

// putPushRule answers PUT /pushrules/global/{kind}/{ruleId}.
func (a *API) putPushRule(r *http.Request, d *auth.Device) (any, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	v, q := mux.Vars(r), r.URL.Query()
	return nil, a.push.Update(r.Context(), d.UserID, func(ur *push.UserRules) error {
		return ur.Put(d.UserID, v["kind"], v["ruleId"], body, q.Get("before"), q.Get("after"))
	})
}

// deletePushRule answers DELETE /pushrules/global/{kind}/{ruleId}.
func (a *API) deletePushRule(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return nil, a.push.Update(r.Context(), d.UserID, func(ur *push.UserRules) error {
		return ur.Delete(v["kind"], v["ruleId"])
	})
}

// setPushRuleEnabled answers PUT /pushrules/global/{kind}/{ruleId}/enabled.
func (a *API) setPushRuleEnabled(r *http.Request, d *auth.Device) (any, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	enabled, err := push.DecodeEnabledBody(body)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	return nil, a.push.Update(r.Context(), d.UserID, func(ur *push.UserRules) error {
		return ur.SetEnabled(d.UserID, v["kind"], v["ruleId"], enabled)
	})
}

// setPushRuleActions answers PUT /pushrules/global/{kind}/{ruleId}/actions.
func (a *API) setPushRuleActions(r *http.Request, d *auth.Device) (any, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	actions, err := push.DecodeActionsBody(body)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	return nil, a.push.Update(r.Context(), d.UserID, func(ur *push.UserRules) error {
		return ur.SetActions(d.UserID, v["kind"], v["ruleId"], actions)
	})
}
