// The demo page: drives the public API (/api/v1/) with fetch, keeps the tokens in sessionStorage.
"use strict";

const API = "/api/v1/";
const INVITEES_PAGE_SIZE = 10;

// The page's own words; the API translates its error messages itself from Accept-Language.
const MESSAGES = {
  en: {
    code_sent: "A {length}-digit code was sent to {phone}. It is valid for {lifetime}.",
    enter_code: "Enter the code sent to {phone}.",
    minutes: "{n} min",
    seconds: "{n} s",
    copied: "Copied.",
    copy_failed: "Could not copy: select the text and copy it by hand.",
    saved: "Saved.",
    activated: "Invite code activated.",
    invited_by: "You were invited by {phone} (code {code}) on {date}.",
    inviter_gone: "You activated an invite code on {date}; its owner's account no longer exists.",
    network: "The server could not be reached. Check the connection and try again.",
    server_error: "The server replied with an error ({status}). Try again later.",
    session_ended: "Your session has ended. Please sign in again.",
    signed_out: "You have signed out.",
  },
  ru: {
    title: "Вход по телефону и приглашения",
    intro: "Войдите по коду из SMS, поделитесь своим кодом приглашения, активируйте чужой.",
    sign_in: "Вход",
    phone: "Номер телефона",
    get_code: "Получить код",
    code: "Код из SMS",
    debug_hint: "Этот сервер не отправляет SMS: код — в его логе (строка вида «SMS to +7…: Ваш код для входа: 1234»).",
    sign_in_button: "Войти",
    profile: "Ваш профиль",
    joined: "С нами с",
    own_code: "Ваш код приглашения",
    copy: "Копировать",
    invite_url: "Ссылка-приглашение",
    inviter: "Кто вас пригласил",
    invite_code: "Полученный код приглашения",
    activate: "Активировать",
    names: "Ваше имя",
    first_name: "Имя",
    last_name: "Фамилия",
    save: "Сохранить",
    invitees: "Вы пригласили",
    no_invitees: "Ваш код пока никто не активировал.",
    more: "Ещё",
    sign_out: "Выйти",
    api_docs: "Документация API",
    page_title: "Вход по телефону и приглашения: демо",
    code_sent: "Код из {length} цифр отправлен на {phone}. Он действует {lifetime}.",
    enter_code: "Введите код, отправленный на {phone}.",
    minutes: "{n} мин",
    seconds: "{n} с",
    retry: "Повторить",
    copied: "Скопировано.",
    copy_failed: "Не удалось скопировать: выделите текст и скопируйте вручную.",
    saved: "Сохранено.",
    activated: "Код приглашения активирован.",
    invited_by: "Вас пригласил {phone} (код {code}) {date}.",
    inviter_gone: "Вы активировали код приглашения {date}; учётной записи его владельца больше нет.",
    network: "Сервер недоступен. Проверьте соединение и попробуйте ещё раз.",
    server_error: "Сервер ответил ошибкой ({status}). Попробуйте позже.",
    session_ended: "Сессия закончилась. Войдите снова.",
    signed_out: "Вы вышли.",
  },
};

const language = (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";

function t(key, values = {}) {
  const text = MESSAGES[language][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function translatePage() {
  document.documentElement.lang = language;
  if (language === "en") return; // the HTML is written in English
  for (const element of document.querySelectorAll("[data-i18n]")) {
    const text = MESSAGES[language][element.dataset.i18n];
    if (text) element.textContent = text;
  }
  document.title = t("page_title");
}

const $ = (id) => document.getElementById(id);

// Tokens live for the tab only: closing it signs out, other sites' pages never see them.
const tokens = {
  get access() {
    return sessionStorage.getItem("access");
  },
  get refresh() {
    return sessionStorage.getItem("refresh");
  },
  save({ access, refresh }) {
    sessionStorage.setItem("access", access);
    sessionStorage.setItem("refresh", refresh);
  },
  clear() {
    sessionStorage.removeItem("access");
    sessionStorage.removeItem("refresh");
  },
};

class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

class SessionEnded extends Error {}

async function send(method, url, body, auth) {
  const headers = { Accept: "application/json", "Accept-Language": navigator.language || "en" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && tokens.access) headers.Authorization = `Bearer ${tokens.access}`;
  return fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

// One refresh at a time: refresh tokens rotate, so a second concurrent refresh with the
// same (now blacklisted) token would fail and sign the person out.
let refreshing = null;

// True with new tokens, false when the refresh token is no longer good (401). Anything else (a
// limit, an outage) says nothing about the session: it is thrown, and the tokens are kept.
function refreshTokens() {
  refreshing ??= (async () => {
    try {
      const response = await send("POST", `${API}auth/token/refresh/`, { refresh: tokens.refresh }, false);
      if (response.status === 401) return false;
      const data = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(response.status, data);
      tokens.save(data);
      return true;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function call(method, url, body, { auth = true } = {}) {
  let response = await send(method, url, body, auth);
  if (response.status === 401 && auth) {
    // A refused refresh is revoked all the same: a disabled account's token is refused (401) but
    // not spent, and would work again were the account enabled again.
    if (!tokens.refresh || !(await refreshTokens())) await endSession(t("session_ended"));
    response = await send(method, url, body, auth);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  // A disabled account stays so, whatever the call: back to the sign-in form, with the reason.
  if (response.status === 403 && auth && data?.code === "account_disabled") await endSession(data.detail);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Revokes the refresh token first (best effort: it may be spent already, or the server out of
// reach), then shows the sign-in form with `message`; throws, so the caller's work stops there.
async function endSession(message) {
  if (tokens.refresh) await revokeRefreshToken().catch(() => {});
  showSignIn(message);
  throw new SessionEnded();
}

// Errors ------------------------------------------------------------------------------

function clearErrors(container) {
  for (const element of container.querySelectorAll("[data-error-for]")) element.textContent = "";
  for (const input of container.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function messagesOf(error) {
  if (!(error instanceof ApiError)) return null;
  if (!error.body?.detail) return { "": t("server_error", { status: error.status }) };
  const byField = {};
  for (const [field, messages] of Object.entries(error.body.errors || {})) {
    byField[field] = [messages].flat(Infinity).join(" ");
  }
  return Object.keys(byField).length ? byField : { "": error.body.detail };
}

// Each message goes next to the field it names; the rest beside the container's main field.
function showErrors(container, error) {
  clearErrors(container);
  if (error instanceof SessionEnded) return;
  if (!(error instanceof ApiError)) console.error(error);
  const messages = messagesOf(error) ?? { "": t("network") };
  let first = null;
  for (const [field, text] of Object.entries(messages)) {
    const target =
      container.querySelector(`[data-error-for="${field}"]`) ||
      container.querySelector(`[data-error-for="${container.dataset.errorField}"]`);
    target.textContent = target.textContent ? `${target.textContent} ${text}` : text;
    const input = container.querySelector(`[name="${target.dataset.errorFor}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  first?.focus();
}

// Runs a form's request with its buttons disabled; errors land next to its fields.
async function busy(container, work) {
  const buttons = container.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  clearErrors(container);
  try {
    await work();
  } catch (error) {
    showErrors(container, error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function onSubmit(form, work) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => work(new FormData(form)));
  });
}

// Views -------------------------------------------------------------------------------

let phone = null; // the E.164 form the API returned for the code request

// The phone a code went to and until when the code lives, kept for the tab: a phone's browser may
// drop the tab while the person reads the SMS, and asking again within a minute is refused.
const CODE_PHONE = "code_phone";

function offerCodeEntry(to, until, message) {
  phone = to;
  sessionStorage.setItem(CODE_PHONE, JSON.stringify({ phone: to, until }));
  $("code-sent").textContent = message;
  $("sign-in-status").textContent = "";
  $("code-form").hidden = false;
  $("code").value = "";
  $("code").focus();
}

// The code entry a reload interrupted, while its code may still be alive.
function pendingCodeEntry() {
  try {
    const pending = JSON.parse(sessionStorage.getItem(CODE_PHONE));
    return pending && typeof pending.phone === "string" && pending.until > Date.now() ? pending : null;
  } catch {
    return null;
  }
}

function lifetime(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  const parts = [minutes && t("minutes", { n: minutes }), (rest || !minutes) && t("seconds", { n: rest })];
  return parts.filter(Boolean).join(" ");
}

function showSignIn(message = "") {
  tokens.clear();
  sessionStorage.removeItem(CODE_PHONE);
  $("retry").hidden = true;
  clearErrors(document.querySelector("main"));
  // Whoever signs in next in this tab sees nothing of the last person's page.
  clearErrors($("profile"));
  for (const id of ["names-status", "copy-status", "inviter-info", "code-sent"]) $(id).textContent = "";
  for (const id of ["phone", "code", "invite-code"]) $(id).value = "";
  $("invitees").replaceChildren();
  $("more-invitees").hidden = true;
  $("more-invitees").dataset.next = "";
  $("profile").hidden = true;
  $("sign-in").hidden = false;
  $("code-form").hidden = true;
  $("sign-in-status").textContent = message;
  $("phone").focus();
}

function formatDate(value) {
  return new Date(value).toLocaleString(language, { dateStyle: "medium", timeStyle: "short" });
}

function showProfile(profile) {
  $("sign-in").hidden = true;
  $("profile").hidden = false;
  $("profile-phone").textContent = profile.phone;
  $("profile-joined").textContent = formatDate(profile.date_joined);
  $("own-code").value = profile.invite_code;
  $("invite-url-field").hidden = !profile.invite_url;
  $("invite-url").value = profile.invite_url || "";
  // An activation stays spent when the inviter's account is deleted, and their code goes with it.
  const activated = Boolean(profile.activated_at);
  $("inviter-info").hidden = !activated;
  $("invite-form").hidden = activated;
  if (activated) {
    const date = formatDate(profile.activated_at);
    $("inviter-info").textContent = profile.activated_invite_code
      ? t("invited_by", { phone: profile.invited_by ?? "—", code: profile.activated_invite_code, date })
      : t("inviter_gone", { date });
  }
  $("first-name").value = profile.first_name;
  $("last-name").value = profile.last_name;
  $("invitees-count").textContent = profile.invitees_count;
}

function addInvitees(page) {
  for (const invitee of page.results) {
    const item = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = [invitee.phone, invitee.first_name, invitee.last_name].filter(Boolean).join(" ");
    const when = document.createElement("time");
    when.dateTime = invitee.activated_at;
    when.textContent = formatDate(invitee.activated_at);
    item.append(who, " ", when);
    $("invitees").append(item);
  }
  $("no-invitees").hidden = $("invitees").children.length > 0;
  const more = $("more-invitees");
  // `next` is an absolute URL built by the server; keep only its path so it stays same-origin.
  const next = page.next && new URL(page.next, location.href);
  more.dataset.next = next ? next.pathname + next.search : "";
  more.hidden = !page.next;
}

async function loadInvitees() {
  $("invitees").replaceChildren();
  addInvitees(await call("GET", `${API}me/invitees/?page_size=${INVITEES_PAGE_SIZE}`));
}

function revokeRefreshToken() {
  return call("POST", `${API}auth/logout/`, { refresh: tokens.refresh }, { auth: false });
}

async function loadProfile() {
  showProfile(await call("GET", `${API}me/`));
  await loadInvitees();
}

// After a reload: an outage or a limit says nothing about the session, which stays; the page
// offers to try again rather than leave the person with the error alone.
function loadSignedIn() {
  return busy(document.querySelector("main"), async () => {
    try {
      await loadProfile();
      $("retry").hidden = true;
    } catch (error) {
      $("retry").hidden = error instanceof SessionEnded; // signed out: the sign-in form says why
      throw error;
    }
  });
}

// Wiring ------------------------------------------------------------------------------

function start() {
  translatePage();

  onSubmit($("phone-form"), async (data) => {
    const sent = await call("POST", `${API}auth/code/`, { phone: data.get("phone") }, { auth: false });
    const message = t("code_sent", { length: sent.code_length, phone: sent.phone, lifetime: lifetime(sent.expires_in) });
    offerCodeEntry(sent.phone, Date.now() + sent.expires_in * 1000, message);
  });

  onSubmit($("code-form"), async (data) => {
    const signedIn = await call("POST", `${API}auth/token/`, { phone, code: data.get("code") }, { auth: false });
    tokens.save(signedIn);
    sessionStorage.removeItem(CODE_PHONE);
    showProfile(signedIn.user);
    await busy($("invitees-box"), loadInvitees);
  });

  onSubmit($("invite-form"), async (data) => {
    showProfile(await call("POST", `${API}me/invite/`, { invite_code: data.get("invite_code") }));
    $("inviter-info").textContent += ` ${t("activated")}`;
  });

  onSubmit($("names-form"), async (data) => {
    $("names-status").textContent = "";
    const names = { first_name: data.get("first_name"), last_name: data.get("last_name") };
    showProfile(await call("PATCH", `${API}me/`, names));
    $("names-status").textContent = t("saved");
  });

  onSubmit($("logout-form"), async () => {
    try {
      await revokeRefreshToken();
    } catch (error) {
      // A refused token (401) is signed out already. A limit or an outage is not: the error shows,
      // and the tokens stay, or the refresh token would live on unrevoked, out of the person's reach.
      if (!(error instanceof ApiError && error.status === 401)) throw error;
    }
    phone = null;
    showSignIn(t("signed_out"));
  });

  $("more-invitees").addEventListener("click", () =>
    busy($("invitees-box"), async () => addInvitees(await call("GET", $("more-invitees").dataset.next))),
  );

  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = $(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(source.value);
      } catch {
        // No clipboard API outside secure contexts (plain http on a LAN address): the old way.
        source.select();
        if (!document.execCommand("copy")) {
          $("copy-status").textContent = t("copy_failed");
          return;
        }
      }
      $("copy-status").textContent = t("copied");
    });
  }

  $("retry").addEventListener("click", loadSignedIn);

  if (tokens.refresh) {
    $("sign-in").hidden = true; // signed in already (a reload): no flash of the sign-in form
    loadSignedIn();
  } else {
    const pending = pendingCodeEntry();
    showSignIn();
    if (pending) offerCodeEntry(pending.phone, pending.until, t("enter_code", { phone: pending.phone }));
  }
}

start();
