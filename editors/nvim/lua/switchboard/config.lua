-- Options of require('switchboard').setup() and their defaults.
local M = {}

M.defaults = {
  -- The server command. nil: `switchboard serve` from PATH, else from the project's or this
  -- checkout's .venv.
  cmd = nil,
  -- Extra environment for the server process (e.g. { ANTHROPIC_BASE_URL = '…' }).
  env = nil,
  -- Passed as initializationOptions; never logged. nil: the server reads ANTHROPIC_API_KEY.
  api_key = nil,
  entitlement = nil,
  -- Your Switchboard Cloud gateway (e.g. 'https://cloud.example.com'), passed to the server as
  -- SWITCHBOARD_GATEWAY_URL; :Switchboard signin signs in there. nil: no gateway (or the env var).
  gateway_url = nil,
  -- Where the sign-in's refresh token is kept between sessions: { get = function(gateway_url) -> token|nil,
  -- set = function(gateway_url, token|nil) }. nil: not kept; sign in again in each Neovim.
  secret_store = nil,
  -- :Switchboard signin opens the sign-in page with vim.ui.open (false: only show the code and the link).
  open_browser = true,
  -- What marks a project root; one server runs per root.
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod', 'Makefile' },
  chat = {
    layout = 'vertical', -- 'vertical' | 'horizontal' | 'float'
    width = 0.4, -- vertical and float: a fraction of the columns, or columns when > 1
    height = 0.4, -- horizontal and float: a fraction of the lines, or lines when > 1
    border = 'rounded', -- float only
    start_insert = false, -- enter insert mode in the prompt when the chat opens
    estimate = true, -- show what the message being typed would cost (switchboard/estimate)
  },
  -- Buffer-local keys of the chat buffer; false disables one.
  keys = {
    send = { n = '<CR>', i = '<C-s>', ns = '<C-s>' },
    stop = '<C-c>',
    model = 'gm',
    retry = 'gr',
    yank_code = 'gy',
    new = 'gn',
    history = 'gh',
    usage = 'gu',
    action = 'ga',
    close = 'q',
  },
  usage = { border = 'rounded' },
}

M.options = vim.deepcopy(M.defaults)

local layouts = { vertical = true, horizontal = true, float = true }

-- Merges user options over the defaults; returns a list of problems (empty when all is well).
function M.apply(opts)
  opts = opts or {}
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  local problems = {}
  if not layouts[M.options.chat.layout] then
    table.insert(problems, ("chat.layout must be 'vertical', 'horizontal' or 'float', not %s"):format(
      vim.inspect(M.options.chat.layout)
    ))
    M.options.chat.layout = M.defaults.chat.layout
  end
  local secrets = M.options.secret_store
  if secrets ~= nil and (type(secrets) ~= 'table' or type(secrets.get) ~= 'function' or type(secrets.set) ~= 'function') then
    table.insert(problems, 'secret_store must be a table with get(gateway_url) and set(gateway_url, token) functions')
    M.options.secret_store = nil
  end
  return problems
end

return M
