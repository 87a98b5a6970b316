// The invitation page: reads the token from the address's fragment (never
// sent to a server), removes it from the address bar, previews the
// invitation, and accepts it with the name and password typed. Every word
// shown comes from the message catalog the gateway embeds in the page
// (#messages), keyed by message id.
"use strict";

(function () {
  const catalog = JSON.parse(document.getElementById("messages").textContent);

  // The message `id`, with `{name}` replaced by `values.name`.
  function t(id, values) {
    const text = Object.prototype.hasOwnProperty.call(catalog, id) ? catalog[id] : id;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole);
  }

  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const sections = ["loading", "invite", "result"];
  // The reasons that have words of their own; any other is "unexpected".
  const REFUSALS = [
    "INVITATION_NOT_FOUND", "INVITATION_EXPIRED", "INVITATION_REVOKED",
    "INVITATION_ALREADY_ACCEPTED", "USER_ALREADY_MEMBER", "INVITER_NOT_AUTHORIZED",
    "SEAT_LIMIT_REACHED", "USER_ACCESS_EXPIRED", "INVITATION_ATTEMPTS_EXCEEDED",
  ];
  // Refusals after which the invitee already has an account.
  const SIGN_IN_INSTEAD = ["INVITATION_ALREADY_ACCEPTED", "USER_ALREADY_MEMBER"];
  // Refusals worth another try, after the wait.
  const TRY_AGAIN = ["INVITATION_ATTEMPTS_EXCEEDED", "HASHING_BUSY", "SERVER_OVERLOADED",
    "SERVICE_UNAVAILABLE", "CONCURRENT_CHANGE"];
  const FIELDS = { display_name: "display-name", displayName: "display-name", password: "password" };

  // A language the address names (`?lang=`): the page stays in it.
  const chosenLanguage = new URLSearchParams(location.search).get("lang");

  // The token, from `#token=…` (or an older link's `?token=…`), then out
  // of the address bar and the history entry.
  function takeToken() {
    const fromHash = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
    const fromQuery = new URLSearchParams(location.search).get("token");
    if (location.hash || location.search) {
      const keep = chosenLanguage ? "?lang=" + encodeURIComponent(chosenLanguage) : "";
      history.replaceState(null, "", location.pathname + keep);
    }
    return (fromHash || fromQuery || "").trim();
  }

  const token = takeToken();
  let preview = null;

  function show(name) {
    for (const section of sections) {
      $(section).hidden = section !== name;
    }
  }

  function announce(text) {
    // Emptied first, so the same words twice are read twice.
    status.textContent = "";
    window.setTimeout(() => { status.textContent = text; }, 50);
  }

  function focusHeading(id) {
    const heading = $(id);
    heading.focus();
  }

  // POST `body` to the REST route `path`; the parsed answer or its error.
  async function call(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (e) {
      return { error: { reason: "OFFLINE" } };
    }
    let json = null;
    try {
      json = await response.json();
    } catch (e) {
      json = null;
    }
    if (response.ok && json) {
      return { ok: json };
    }
    return { error: describeError(json, response.headers.get("retry-after")) };
  }

  // The reason, field violations and retry delay (seconds) of a
  // google.rpc.Status body.
  function describeError(json, retryAfter) {
    const error = { reason: "", fields: [], wait: null };
    const details = json && Array.isArray(json.details) ? json.details : [];
    for (const detail of details) {
      const type = String(detail["@type"] || "");
      if (type.endsWith("google.rpc.ErrorInfo")) {
        error.reason = String(detail.reason || "");
      } else if (type.endsWith("google.rpc.BadRequest")) {
        for (const violation of detail.fieldViolations || []) {
          error.fields.push(String(violation.field || ""));
        }
      } else if (type.endsWith("google.rpc.RetryInfo")) {
        const seconds = parseFloat(String(detail.retryDelay || ""));
        if (seconds >= 0) {
          error.wait = Math.ceil(seconds);
        }
      }
    }
    if (error.wait === null && retryAfter && /^\d+$/.test(retryAfter)) {
      error.wait = parseInt(retryAfter, 10);
    }
    return error;
  }

  // A wait in words, as the browser writes durations in the page's
  // language (its plural rules included): "30 seconds", "2 Minuten".
  function waitWords(seconds) {
    const lang = document.documentElement.lang || undefined;
    const [value, unit] = seconds < 90 ? [Math.max(1, seconds), "second"] : [Math.ceil(seconds / 60), "minute"];
    return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(value);
  }

  function expiry(value) {
    const date = new Date(value);
    if (!value || isNaN(date.getTime())) {
      return "";
    }
    return new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      dateStyle: "long",
      timeStyle: "short",
    }).format(date);
  }

  function showPreview(found) {
    preview = found;
    const workspace = found.workspaceName || "";
    $("invite-heading").textContent = t("invite-heading", { workspace });
    $("invite-from").textContent = found.inviterDisplayName
      ? t("invite-from", { inviter: found.inviterDisplayName, workspace })
      : t("invite-from_unknown", { workspace });
    $("invite-email").textContent = found.email || "";
    // A built-in role by its name in the page's language; any other as named.
    const roleName = "role-name-" + (found.role || "");
    $("invite-role").textContent = Object.prototype.hasOwnProperty.call(catalog, roleName)
      ? t(roleName) : found.role || "";
    $("invite-expires").textContent = expiry(found.expireTime);
    show("invite");
    announce($("invite-heading").textContent);
    focusHeading("invite-heading");
  }

  // The words of a refusal, with what to do next.
  function showRefusal(error) {
    let heading;
    let body;
    const reason = error.reason;
    if (REFUSALS.includes(reason)) {
      heading = t("error-" + reason + "-heading");
      body = t("error-" + reason + "-body", { wait: waitWords(error.wait === null ? 60 : error.wait) });
    } else if (TRY_AGAIN.includes(reason)) {
      heading = t("error-busy-heading");
      body = error.wait === null ? t("error-busy-body_no_wait") : t("error-busy-body", { wait: waitWords(error.wait) });
    } else if (reason === "OFFLINE") {
      heading = t("error-offline-heading");
      body = t("error-offline-body");
    } else {
      heading = t("error-unexpected-heading");
      body = t("error-unexpected-body");
    }
    $("result").dataset.reason = reason || "UNKNOWN";
    $("result-heading").textContent = heading;
    $("result-body").textContent = body;
    const link = $("result-link");
    link.hidden = !SIGN_IN_INSTEAD.includes(reason);
    link.textContent = t("action-sign_in");
    const retry = $("retry");
    retry.hidden = !(TRY_AGAIN.includes(reason) || reason === "OFFLINE" || !REFUSALS.includes(reason));
    retry.textContent = t("action-try_again");
    show("result");
    announce(heading);
    focusHeading("result-heading");
  }

  function showSuccess(user) {
    const workspace = preview ? preview.workspaceName : "";
    $("result").dataset.reason = "ACCEPTED";
    $("result-heading").textContent = t("success-heading", { workspace });
    $("result-body").textContent = t("success-body", { email: (user && user.email) || (preview && preview.email) || "" });
    const link = $("result-link");
    link.textContent = t("action-open_app");
    link.hidden = false;
    $("retry").hidden = true;
    show("result");
    announce(t("success-status"));
    focusHeading("result-heading");
  }

  function clearFieldErrors() {
    $("form-error").hidden = true;
    for (const id of ["display-name", "password"]) {
      $(id).removeAttribute("aria-invalid");
      $(id + "-error").hidden = true;
      $(id + "-error").textContent = "";
    }
  }

  function showFieldErrors(fields) {
    let first = null;
    for (const field of fields) {
      const id = FIELDS[field];
      if (!id) {
        continue;
      }
      $(id).setAttribute("aria-invalid", "true");
      $(id + "-error").textContent = t("field-" + (id === "password" ? "password" : "display_name"));
      $(id + "-error").hidden = false;
      if (first === null || id === "display-name") {
        first = id;
      }
    }
    if (first === null) {
      return false;
    }
    $("form-error").textContent = t("field-summary");
    $("form-error").hidden = false;
    announce($(first + "-error").textContent);
    $(first).focus();
    return true;
  }

  function busy(on) {
    const button = $("submit");
    button.disabled = on;
    button.textContent = on ? t("form-submitting") : t("form-submit");
    $("accept-form").setAttribute("aria-busy", on ? "true" : "false");
    if (on) {
      announce(t("form-submitting"));
    }
  }

  async function start() {
    show("loading");
    if (!token) {
      showRefusal({ reason: "INVITATION_NOT_FOUND", wait: null });
      return;
    }
    const answer = await call("./v1/invitations:preview", { token });
    const language = answer.ok && answer.ok.locale;
    if (language && !chosenLanguage && language !== document.documentElement.lang) {
      // The page again, in the language the invitation was written in; the
      // token goes back in the fragment, which no server sees.
      location.replace(location.pathname + "?lang=" + encodeURIComponent(language) +
        "#token=" + encodeURIComponent(token));
      return;
    }
    if (answer.ok) {
      showPreview(answer.ok);
    } else {
      showRefusal(answer.error);
    }
  }

  $("accept-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors();
    busy(true);
    const answer = await call("./v1/invitations:accept", {
      token,
      displayName: $("display-name").value,
      password: $("password").value,
    });
    busy(false);
    if (answer.ok) {
      $("password").value = "";
      showSuccess(answer.ok.user);
    } else if (!(answer.error.reason === "INVALID_ARGUMENT" && showFieldErrors(answer.error.fields))) {
      showRefusal(answer.error);
    }
  });

  $("retry").addEventListener("click", () => {
    if (preview) {
      show("invite");
      focusHeading("invite-heading");
    } else {
      start();
    }
  });

  start();
})();
