-- Signing in to Switchboard Cloud: `:Switchboard signin` runs the device flow (the server asks the gateway
-- for a code and waits for the approval; this shows the code and opens the page), `:Switchboard signin
-- {token}` presents an entitlement token, `:Switchboard signout` ends the session.
--
-- The refresh token the server hands over is kept only if the user gave a `secret_store` in setup():
-- Neovim has no secret storage of its own, and the server never writes the token to disk. Without one,
-- the session lasts as long as the server (sign in again in the next Neovim).
local config = require('switchboard.config')
local server = require('switchboard.server')
local status = require('switchboard.status')

local M = {}

local pending = nil -- { root, client, request_id, win, buf } while a device flow waits

local function gateway_url()
  local opts = config.options
  return opts.gateway_url or (opts.env and opts.env.SWITCHBOARD_GATEWAY_URL) or vim.env.SWITCHBOARD_GATEWAY_URL or ''
end

-- The user's secret_store, called safely: a broken callback must not break signing in.
local function store(action, ...)
  local secrets = config.options.secret_store
  if type(secrets) ~= 'table' or type(secrets[action]) ~= 'function' then
    return nil
  end
  local ok, value = pcall(secrets[action], gateway_url(), ...)
  if not ok then
    vim.notify('Switchboard: secret_store.' .. action .. ' failed: ' .. tostring(value), vim.log.levels.WARN)
    return nil
  end
  return value
end

-- Keep (or forget, for nil) the refresh token where the user keeps secrets.
function M.keep_refresh_token(token)
  if token == vim.NIL then
    token = nil
  end
  store('set', token)
end

-- "ada@example.com via cloud.example.com", or nil in local mode.
function M.describe(report)
  local info = report and report.accountInfo
  if type(info) ~= 'table' or info.mode ~= 'hosted' then
    return nil
  end
  local host = type(info.gatewayUrl) == 'string' and (info.gatewayUrl:match('^%a[%w+.-]*://([^/]+)') or info.gatewayUrl)
    or 'Switchboard Cloud'
  local who = type(info.email) == 'string' and info.email or 'signed in'
  return ('%s via %s'):format(who, host)
end

local function signed_in(root, result)
  if type(result.refreshToken) == 'string' then
    M.keep_refresh_token(result.refreshToken)
  end
  status.set_usage(result.usage)
  server.request(root, 'switchboard/models', { workspaceUri = server.workspace_uri(root) }, function(err, res)
    if not err then
      status.set_models(root, res)
    end
  end)
end

local function close_code_window()
  local p = pending
  pending = nil
  if p and p.win and vim.api.nvim_win_is_valid(p.win) then
    vim.api.nvim_win_close(p.win, true)
  end
  return p
end

-- Cancel a device flow that is waiting ($/cancelRequest; Neovim drops the reply, so this ends it here).
function M.cancel()
  local p = close_code_window()
  if p and p.client and p.request_id then
    server.cancel(p.client, p.request_id)
    vim.notify('Switchboard: sign-in cancelled.', vim.log.levels.INFO)
  end
end

local function code_lines(code)
  return {
    '',
    '  Your sign-in code:  ' .. code.userCode,
    '',
    '  Open ' .. code.verificationUri,
    '  sign in, and enter the code to approve this editor.',
    ('  The code expires in %d minutes.'):format(math.max(1, math.floor(code.expiresIn / 60 + 0.5))),
    '',
    '  Waiting for the approval…  (q cancels)',
  }
end

-- The float with the code; the browser opens at the page with the code filled in, where Neovim can.
function M.show_code(code)
  if not pending then
    return
  end
  local lines = code_lines(code)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].filetype = 'switchboard_signin'
  local width = 0
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line) + 2)
  end
  width = math.min(width, vim.o.columns - 4)
  local win = vim.api.nvim_open_win(buf, true, {
    relative = 'editor',
    width = width,
    height = #lines,
    row = math.floor((vim.o.lines - #lines) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    border = config.options.usage.border,
    title = ' Switchboard sign-in ',
    title_pos = 'center',
    style = 'minimal',
  })
  for _, key in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', key, M.cancel, { buffer = buf, nowait = true, desc = 'Switchboard: cancel sign-in' })
  end
  pending.win, pending.buf = win, buf
  if config.options.open_browser ~= false and vim.ui.open then
    local url = type(code.verificationUriComplete) == 'string' and code.verificationUriComplete or code.verificationUri
    local _, err = vim.ui.open(url)
    if err then
      vim.notify('Switchboard: could not open the browser (' .. err .. '): open ' .. code.verificationUri, vim.log.levels.WARN)
    end
  end
end

local function device_flow(root)
  if pending then
    M.cancel()
  end
  local flow = { root = root }
  pending = flow
  server.request(root, 'switchboard/signIn', vim.empty_dict(), function(err, result)
    if pending ~= flow then
      return -- cancelled, or replaced by a newer sign-in
    end
    close_code_window()
    if err then
      require('switchboard.errors').show(err)
      return
    end
    signed_in(root, result)
    vim.notify(
      ('Switchboard: signed in as %s. %s plan, %s credits left.'):format(
        M.describe(result.usage) or 'your account',
        result.usage.planName,
        status.format_credits(result.usage.remainingCredits)
      ),
      vim.log.levels.INFO
    )
  end, function(client, request_id)
    flow.client, flow.request_id = client, request_id
  end)
end

local function with_token(root, token)
  server.request(root, 'switchboard/signIn', { token = token }, function(err, result)
    if err then
      require('switchboard.errors').show(err)
      return
    end
    signed_in(root, result)
    vim.notify(('Switchboard: %s. %s'):format(result.usage.planName, result.usage.planReason), vim.log.levels.INFO)
  end)
end

-- :Switchboard signin [token]
function M.signin(root, token)
  if token and vim.trim(token) ~= '' then
    with_token(root, vim.trim(token))
  else
    device_flow(root)
  end
end

-- :Switchboard signout
function M.signout(root)
  M.cancel()
  M.keep_refresh_token(nil)
  server.request(root, 'switchboard/signOut', vim.empty_dict(), function(err, report)
    if err then
      require('switchboard.errors').show(err)
      return
    end
    status.set_usage(report)
    server.request(root, 'switchboard/models', { workspaceUri = server.workspace_uri(root) }, function(e, res)
      if not e then
        status.set_models(root, res)
      end
    end)
    vim.notify('Switchboard: signed out.', vim.log.levels.INFO)
  end)
end

-- When a server is ready, before any other request to it (server.lua): resume the stored session, if the
-- user keeps one. The request is sent before this returns.
function M.resume(root)
  local token = store('get')
  if type(token) ~= 'string' or token == '' then
    return
  end
  server.request(root, 'switchboard/signIn', { refreshToken = token }, function(err, result)
    if err then
      local reason = type(err.data) == 'table' and err.data.reason or nil
      if reason ~= 'unreachable' and reason ~= 'no_gateway' then
        M.keep_refresh_token(nil)
      end
      vim.notify('Switchboard: could not resume the Switchboard Cloud session: ' .. tostring(err.message), vim.log.levels.WARN)
      return
    end
    signed_in(root, result)
  end)
end

-- switchboard/signInCode and switchboard/credentialsChanged, for server.lua's handlers.
M.handlers = {
  ['switchboard/signInCode'] = function(_, code)
    M.show_code(code)
  end,
  ['switchboard/credentialsChanged'] = function(_, params)
    M.keep_refresh_token(params and params.refreshToken)
  end,
}

return M
