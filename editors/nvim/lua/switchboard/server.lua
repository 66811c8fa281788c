-- One `switchboard serve` per project root, started or reused through vim.lsp, and the requests to it.
-- Requests wait until the client is initialized: Neovim 0.12 would otherwise send them before the
-- server has answered `initialize`.
local config = require('switchboard.config')
local status = require('switchboard.status')

local M = {}

-- root -> { id = client id, ready = initialized, queue = calls waiting for it, server_info, stopping }
local entries = {} ---@type table<string, table>
local progress_listeners = {} ---@type table<string, fun(value: table)>
local exit_listeners = {} ---@type fun(root: string, code: integer)[]
local next_token = 0

local has_011 = vim.fn.has('nvim-0.11') == 1

-- client:method(...) on 0.11+, client.method(...) on 0.10.
function M.call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local function is_stopped(client)
  return M.call(client, 'is_stopped')
end

local function plugin_checkout()
  local source = debug.getinfo(1, 'S').source:sub(2)
  local real = vim.uv.fs_realpath(source) or source
  -- <checkout>/editors/nvim/lua/switchboard/server.lua
  return vim.fs.dirname(vim.fs.dirname(vim.fs.dirname(vim.fs.dirname(vim.fs.dirname(real)))))
end

local function venv_server(dir)
  for _, rel in ipairs({ '/.venv/bin/switchboard', '/.venv/Scripts/switchboard.exe' }) do
    if vim.fn.executable(dir .. rel) == 1 then
      return dir .. rel
    end
  end
end

-- The server command and where it was found: the `cmd` option, `switchboard` on PATH, the project's
-- .venv, or the .venv of the checkout this plugin lives in.
function M.find_cmd(root)
  local cmd = config.options.cmd
  if cmd then
    return type(cmd) == 'string' and { cmd } or cmd, 'the cmd option'
  end
  local on_path = vim.fn.exepath('switchboard')
  if on_path ~= '' then
    return { on_path, 'serve' }, 'PATH'
  end
  if root then
    local exe = venv_server(root)
    if exe then
      return { exe, 'serve' }, "the project's .venv"
    end
  end
  local checkout = plugin_checkout()
  if vim.uv.fs_stat(checkout .. '/pyproject.toml') then
    local exe = venv_server(checkout)
    if exe then
      return { exe, 'serve' }, "the plugin checkout's .venv"
    end
  end
  return nil, nil
end

function M.root(bufnr)
  bufnr = bufnr or 0
  local chat_root = vim.b[bufnr].switchboard_root
  if chat_root then
    return chat_root
  end
  local root = vim.fs.root(bufnr, config.options.root_markers)
  return vim.fs.normalize(root or vim.fn.getcwd())
end

function M.workspace_uri(root)
  return vim.uri_from_fname(root)
end

function M.new_token()
  next_token = next_token + 1
  return ('switchboard-%d-%d'):format(vim.fn.getpid(), next_token)
end

-- fn(value) receives every $/progress value of `token` until M.unlisten(token).
function M.listen(token, fn)
  progress_listeners[token] = fn
end

function M.unlisten(token)
  progress_listeners[token] = nil
end

local function handlers()
  return {
    ['$/progress'] = function(err, params, ctx, cfg)
      local listener = params and progress_listeners[params.token]
      if listener then
        listener(params.value)
        return
      end
      return vim.lsp.handlers['$/progress'](err, params, ctx, cfg)
    end,
    -- The 80% / 100% alerts and selection notices, the same way on every Neovim (0.10 echoes them).
    ['window/showMessage'] = function(_, params)
      local levels = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }
      vim.notify('Switchboard: ' .. params.message, levels[params.type] or vim.log.levels.INFO)
    end,
    ['switchboard/usageChanged'] = function(_, report)
      status.set_usage(report)
    end,
    ['switchboard/signInCode'] = function(...)
      require('switchboard.account').handlers['switchboard/signInCode'](...)
    end,
    ['switchboard/credentialsChanged'] = function(...)
      require('switchboard.account').handlers['switchboard/credentialsChanged'](...)
    end,
    ['switchboard/modelChanged'] = function(_, params, ctx)
      local client = vim.lsp.get_client_by_id(ctx.client_id)
      if client and client.root_dir then
        status.set_selected(vim.fs.normalize(client.root_dir), params.selected)
      end
    end,
  }
end

local function init_options()
  local opts = vim.empty_dict()
  if config.options.api_key then
    opts.apiKey = config.options.api_key
  end
  if config.options.entitlement then
    opts.entitlement = config.options.entitlement
  end
  return opts
end

local function ready(root, entry, client, result)
  entry.ready = true
  entry.server_info = result and result.serverInfo
  local queue = entry.queue
  entry.queue = {}
  -- First of all, the stored session's resume (signIn {refreshToken}), sent now: requests go out in the
  -- order they are made, and the server holds back a chat that comes after it until it ends. Before it the
  -- server is in local mode: a chat queued while the server started would go to the own key.
  require('switchboard.account').resume(root)
  -- Then what the statusline shows.
  M.request(root, 'switchboard/usage', vim.empty_dict(), function(err, report)
    if not err then
      status.set_usage(report)
    end
  end)
  M.request(root, 'switchboard/models', { workspaceUri = M.workspace_uri(root) }, function(err, res)
    if not err then
      status.set_models(root, res)
    end
  end)
  for _, fn in ipairs(queue) do
    fn(client)
  end
end

-- The server's environment: `env`, with `gateway_url` as SWITCHBOARD_GATEWAY_URL when it is set.
local function server_env()
  local env = vim.deepcopy(config.options.env or {})
  if type(config.options.gateway_url) == 'string' and config.options.gateway_url ~= '' then
    env.SWITCHBOARD_GATEWAY_URL = config.options.gateway_url
  end
  return next(env) and env or nil
end

local function start(root)
  local cmd, _ = M.find_cmd(root)
  if not cmd then
    vim.notify(
      'Switchboard: no `switchboard` server found. Install it (pip install switchboard, or ./dev setup in a '
        .. 'checkout) so `switchboard` is on PATH, or set `cmd` in setup(). See :checkhealth switchboard.',
      vim.log.levels.ERROR
    )
    return nil
  end
  local entry = { ready = false, queue = {} }
  local cfg = {
    name = 'switchboard',
    cmd = cmd,
    cmd_env = server_env(),
    root_dir = root,
    workspace_folders = { { uri = M.workspace_uri(root), name = vim.fs.basename(root) } },
    init_options = init_options(),
    handlers = handlers(),
    on_init = function(client, result)
      vim.schedule(function()
        ready(root, entry, client, result)
      end)
    end,
    on_exit = function(code, signal)
      vim.schedule(function()
        if entries[root] == entry then
          entries[root] = nil
        end
        if entry.stopping then
          return
        end
        if code ~= 0 or signal ~= 0 then
          vim.notify(
            ('Switchboard: the server for %s exited (code %d, signal %d). The next request starts it again; '
              .. 'see :LspLog.'):format(root, code, signal),
            vim.log.levels.ERROR
          )
        end
        for _, listener in ipairs(exit_listeners) do
          listener(root, code)
        end
      end)
    end,
  }
  local id
  if has_011 then
    id = vim.lsp.start(cfg, { attach = false })
  else
    id = vim.lsp.start_client(cfg)
  end
  if not id then
    vim.notify('Switchboard: could not start ' .. table.concat(cmd, ' '), vim.log.levels.ERROR)
    return nil
  end
  entry.id = id
  entries[root] = entry
  return entry
end

-- Calls fn(client) once the root's server is initialized, starting it if needed.
function M.with_client(root, fn)
  local entry = entries[root]
  local client = entry and vim.lsp.get_client_by_id(entry.id)
  if not client or is_stopped(client) then
    entry = start(root)
    if not entry then
      return false
    end
    client = nil
  end
  if entry.ready then
    fn(client or vim.lsp.get_client_by_id(entry.id))
  else
    table.insert(entry.queue, fn)
  end
  return true
end

function M.client(root)
  local entry = entries[root]
  return entry and entry.ready and vim.lsp.get_client_by_id(entry.id) or nil
end

function M.server_info(root)
  local entry = entries[root]
  return entry and entry.server_info
end

-- Sends a request; handler(err, result). on_sent(client, request_id) gets what cancelling needs.
function M.request(root, method, params, handler, on_sent)
  return M.with_client(root, function(client)
    local ok, request_id = M.call(client, 'request', method, params, function(err, result)
      handler(err, result)
    end)
    if not ok then
      handler({ code = -32603, message = 'The Switchboard server is not running.' }, nil)
    elseif on_sent then
      on_sent(client, request_id)
    end
  end)
end

-- fn(root, code) runs when a root's server exits unasked (what was in flight will get no answer).
function M.on_exit(fn)
  table.insert(exit_listeners, fn)
end

function M.cancel(client, request_id)
  M.call(client, 'cancel_request', request_id)
end

function M.stop_all()
  for root, entry in pairs(entries) do
    entry.stopping = true
    local client = vim.lsp.get_client_by_id(entry.id)
    if client then
      M.call(client, 'stop')
    end
    entries[root] = nil
  end
end

return M
