-- switchboard.nvim: chat with Claude models through Switchboard's language server.
local version = require('switchboard.version')

local M = {}

local function define_highlights()
  local set = function(name, link)
    vim.api.nvim_set_hl(0, name, { link = link, default = true })
  end
  set('SwitchboardStatus', 'StatusLine')
  set('SwitchboardStatusWarn', 'DiagnosticWarn')
  set('SwitchboardStatusOver', 'DiagnosticError')
  set('SwitchboardEstimate', 'DiagnosticHint')
end

-- require('switchboard').setup(opts): optional (the commands work with the defaults); lazy.nvim calls
-- it with `opts`. Returns false on an unsupported Neovim.
function M.setup(opts)
  if not version.supported() then
    version.warn()
    return false
  end
  local problems = require('switchboard.config').apply(opts)
  for _, problem in ipairs(problems) do
    vim.notify('switchboard.nvim: ' .. problem, vim.log.levels.WARN)
  end
  define_highlights()
  M._setup_done = true
  return true
end

function M.init()
  define_highlights()
  vim.api.nvim_create_autocmd('ColorScheme', { callback = define_highlights })
  vim.api.nvim_create_autocmd('VimLeavePre', {
    callback = function()
      require('switchboard.server').stop_all()
    end,
  })
end

-- The statusline text, e.g. "Auto · 49.6 cr" ('' before the server has reported). Cheap: it reads
-- what usageChanged last said.
function M.statusline()
  local root = vim.b.switchboard_root or M._root_of_buffer()
  return require('switchboard.status').statusline(root)
end

-- The highlight group for the statusline: SwitchboardStatus, …Warn (80% used) or …Over (100%).
function M.statusline_hl()
  return require('switchboard.status').highlight()
end

-- For a plain 'statusline': %{%v:lua.require'switchboard'.statusline_component()%}
function M.statusline_component()
  local text = M.statusline()
  if text == '' then
    return ''
  end
  return '%#' .. M.statusline_hl() .. '#' .. text:gsub('%%', '%%%%') .. '%*'
end

-- A lualine component: sections = { lualine_x = { require('switchboard').lualine } }
M.lualine = {
  function()
    return M.statusline()
  end,
  color = function()
    return M.statusline_hl()
  end,
}

local buffer_roots = {}
function M._root_of_buffer()
  local buf = vim.api.nvim_get_current_buf()
  local root = buffer_roots[buf]
  if root == nil then
    root = vim.fs.root(buf, require('switchboard.config').options.root_markers) or false
    buffer_roots[buf] = root and vim.fs.normalize(root) or false
  end
  return buffer_roots[buf] or nil
end

function M.chat(opts)
  return require('switchboard.chat').open(opts)
end

return M
